// TLS, for both engines: handshakes broken off, trust (the system CAs plus HERALD_CA_FILE, a
// root or an intermediate as the anchor) and h2 over TLS against nghttpd (apt package
// nghttp2-server), skipped when nghttpd or the openssl CLI is absent.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "http/client.h"
#include "http/http_test_util.h"

namespace herald::http {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the shared http test helpers

class HttpClientTlsTest : public HttpEngineTest {};
INSTANTIATE_TEST_SUITE_P(Engines, HttpClientTlsTest, AllEngines(), HttpEngineTest::Name);

// A server that takes the ClientHello and then resets the connection, or closes it without a
// word: the handshake breaks off, which is a network failure worth retrying, not a bad
// certificate.
TEST_P(HttpClientTlsTest, TlsHandshakeBrokenOffIsTransient) {
  for (bool reset : {true, false}) {
    LoopbackAcceptor acceptor([&acceptor, reset](int fd) {
      char hello[512];
      if (acceptor.WaitReadable(fd)) (void)read(fd, hello, sizeof(hello));
      if (reset) {
        linger abort{1, 0};  // close() sends RST
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
      }
    });
    auto client = NewEngineClient(LoopbackOptions());
    Outcome outcome =
        SendAndWait(*client, Get("https://127.0.0.1:" + std::to_string(acceptor.port()) + "/"));
    EXPECT_EQ(outcome.error, TransportError::kTlsHandshake)
        << (reset ? "reset: " : "closed: ") << TransportErrorName(outcome.error) << ": "
        << outcome.error_message;
    EXPECT_TRUE(IsTransient(outcome.error));
  }
}

TEST_P(HttpClientTlsTest, TlsVerifiesAgainstSystemPlusExtraCaAndNegotiatesH2) {
  std::string nghttpd = FindProgram("nghttpd");
  std::string openssl = FindProgram("openssl");
  if (nghttpd.empty() || openssl.empty()) GTEST_SKIP() << "needs nghttpd and openssl";
  TempDir dir;
  dir.Write("hello.txt", "hello over tls");
  ChildProcess make_cert({openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                          "ec_paramgen_curve:P-256", "-nodes", "-keyout", dir.File("key.pem"),
                          "-out", dir.File("cert.pem"), "-subj", "/CN=localhost", "-addext",
                          "subjectAltName=IP:127.0.0.1,DNS:localhost", "-days", "2"});
  ASSERT_EQ(make_cert.Wait(), 0);
  Nghttpd server(nghttpd, dir, dir.File("key.pem"), dir.File("cert.pem"));
  ASSERT_TRUE(server.Ready());
  const std::string url = "https://127.0.0.1:" + std::to_string(server.port()) + "/hello.txt";

  ClientOptions options = LoopbackOptions();
  options.ca_file = dir.File("cert.pem");
  Collector collector;
  auto trusting = NewEngineClient(options);
  Outcome outcome = SendAndWait(*trusting, Get(url));
  ASSERT_TRUE(outcome.ok()) << outcome.error_message;
  EXPECT_EQ(outcome.response.http_version, "2");
  EXPECT_EQ(outcome.response.body, "hello over tls");

  // Concurrent requests multiplex on one TLS connection (counted through a TCP proxy).
  CountingProxy proxy(server.port());
  constexpr int kRequests = 60;
  for (int i = 0; i < kRequests; ++i) {
    trusting->Send(Get("https://127.0.0.1:" + std::to_string(proxy.port()) + "/hello.txt"),
                   collector.callback());
  }
  ASSERT_TRUE(collector.WaitFor(kRequests));
  for (const auto& result : collector.outcomes()) {
    ASSERT_TRUE(result.ok()) << result.error_message;
    EXPECT_EQ(result.response.http_version, "2");
  }
  EXPECT_EQ(proxy.accepted(), 1);

  auto system_only = NewEngineClient(LoopbackOptions());
  outcome = SendAndWait(*system_only, Get(url));
  EXPECT_EQ(outcome.error, TransportError::kTls) << outcome.error_message;
  EXPECT_FALSE(IsTransient(outcome.error));

  options.ca_file = dir.File("missing.pem");
  auto misconfigured = NewEngineClient(options);
  outcome = SendAndWait(*misconfigured, Get(url));
  EXPECT_EQ(outcome.error, TransportError::kTls) << outcome.error_message;
}

// A chain root -> intermediate -> leaf, served with the intermediate. Trusting the root verifies
// the whole chain; trusting only the intermediate makes it the anchor (as libcurl's own store
// does: X509_V_FLAG_PARTIAL_CHAIN); trusting neither fails.
TEST_P(HttpClientTlsTest, TlsTrustsARootOrAnIntermediateGivenAsTheExtraCa) {
  std::string nghttpd = FindProgram("nghttpd");
  std::string openssl = FindProgram("openssl");
  if (nghttpd.empty() || openssl.empty()) GTEST_SKIP() << "needs nghttpd and openssl";
  TempDir dir;
  dir.Write("hello.txt", "hello over a chain");
  TestPki pki(openssl, dir);
  ASSERT_TRUE(pki.MakeCa("root", "Herald test root"));
  ASSERT_TRUE(pki.Issue("int", "Herald test intermediate", "root", TestPki::kCaExtensions));
  ASSERT_TRUE(pki.IssueServer("leaf", "int"));
  dir.Write("chain.pem", dir.Read("leaf.pem") + dir.Read("int.pem"));
  Nghttpd server(nghttpd, dir, dir.File("leaf.key"), dir.File("chain.pem"));
  ASSERT_TRUE(server.Ready());
  const std::string url = "https://127.0.0.1:" + std::to_string(server.port()) + "/hello.txt";

  for (const char* anchor : {"root.pem", "int.pem"}) {
    ClientOptions options = LoopbackOptions();
    options.ca_file = dir.File(anchor);
    auto client = NewEngineClient(options);
    Outcome outcome = SendAndWait(*client, Get(url));
    ASSERT_TRUE(outcome.ok()) << anchor << ": " << outcome.error_message;
    EXPECT_EQ(outcome.response.body, "hello over a chain");
  }
  auto untrusting = NewEngineClient(LoopbackOptions());
  Outcome outcome = SendAndWait(*untrusting, Get(url));
  EXPECT_EQ(outcome.error, TransportError::kTls) << outcome.error_message;
}

}  // namespace
}  // namespace herald::http
