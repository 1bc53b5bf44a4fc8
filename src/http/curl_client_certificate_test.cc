// Request::client_certificate, for both engines, against a TLS server that asks for client
// certificates and verifies them against a test CA (made with the openssl CLI; skipped when it is
// absent): the request's certificate is the one presented; a request never goes out on a
// connection, nor resumes a TLS session, that belongs to another certificate or to none.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "http/client.h"
#include "http/http_test_util.h"

namespace herald::http {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the shared http test helpers

class HttpClientCertificateTest : public HttpEngineTest {
 protected:
  // One PKI for the suite: "ca" issues the server certificate and the clients "client-a" and
  // "client-b"; "rogue" is a client certificate from another CA.
  static void SetUpTestSuite() {
    openssl_ = FindProgram("openssl");
    if (openssl_.empty()) return;
    dir_ = new TempDir;
    TestPki pki(openssl_, *dir_);
    ready_ = pki.MakeCa("ca", "Herald test CA") && pki.IssueServer("server", "ca") &&
             pki.IssueClient("client-a", "client-a", "ca") &&
             pki.IssueClient("client-b", "client-b", "ca") &&
             pki.MakeCa("rogue-ca", "Someone else's CA") &&
             pki.IssueClient("rogue", "rogue", "rogue-ca");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (openssl_.empty()) GTEST_SKIP() << "needs the openssl CLI";
    ASSERT_TRUE(ready_) << "could not make the test certificates";
  }

  ServerOptions ServerFiles(bool require_client_certificate = true) const {
    return Server(TlsServerFiles{dir_->File("server.pem"), dir_->File("server.key"),
                                 dir_->File("ca.pem"), require_client_certificate});
  }
  static std::shared_ptr<const ClientCertificate> Certificate(const std::string& name) {
    return TestPki(openssl_, *dir_).ClientCertificateOf(name);
  }
  // Trusts the test CA (for the server certificate).
  std::unique_ptr<Client> NewTrustingClient() const {
    ClientOptions options = LoopbackOptions();
    options.ca_file = dir_->File("ca.pem");
    return NewEngineClient(options);
  }
  // A GET of `url` presenting `certificate` (none if null).
  static Request With(const std::string& url,
                      std::shared_ptr<const ClientCertificate> certificate) {
    Request request = Get(url);
    request.client_certificate = std::move(certificate);
    return request;
  }

  // The server answers with the common name of the certificate the client presented on the
  // connection the request came on ("" if none).
  static Reply EchoPeer(const SeenRequest& request) {
    return Reply{Reply::kRespond, HttpResponse(200, request.peer)};
  }

  static inline std::string openssl_;
  static inline TempDir* dir_ = nullptr;
  static inline bool ready_ = false;
};

INSTANTIATE_TEST_SUITE_P(Engines, HttpClientCertificateTest, AllEngines(), HttpEngineTest::Name);

TEST_P(HttpClientCertificateTest, TheRequestsCertificateIsPresentedAndVerified) {
  TestServer server(EchoPeer, ServerFiles());
  auto client = NewTrustingClient();

  Outcome outcome = SendAndWait(*client, With(server.Url(), Certificate("client-a")));
  ASSERT_TRUE(outcome.ok()) << outcome.error_message;
  EXPECT_EQ(outcome.response.status, 200);
  EXPECT_EQ(outcome.response.body, "client-a");

  // Without a certificate, or with one the server cannot verify: the server refuses the
  // handshake and no request gets through. With TLS 1.3 the client has finished its side of the
  // handshake when the server's alert comes, so the client reports it on its first read or write:
  // kConnect ("tlsv13 alert certificate required", "tlsv1 alert unknown ca", or a reset when the
  // server closed first); TLS 1.2 would give kTlsHandshake.
  for (const char* name : {"", "rogue"}) {
    auto certificate = *name != '\0' ? Certificate(name) : nullptr;
    outcome = SendAndWait(*client, With(server.Url(), certificate));
    EXPECT_FALSE(outcome.ok()) << "certificate \"" << name << "\": " << outcome.response.status;
    EXPECT_TRUE(outcome.error == TransportError::kConnect ||
                outcome.error == TransportError::kTlsHandshake ||
                outcome.error == TransportError::kTls)
        << "certificate \"" << name << "\": " << TransportErrorName(outcome.error) << ": "
        << outcome.error_message;
  }
  EXPECT_EQ(server.received(), 1);
  EXPECT_EQ(server.handshakes(), 1);

  // The certificate is still presented afterwards (nothing of the failures stuck).
  outcome = SendAndWait(*client, With(server.Url(), Certificate("client-b")));
  ASSERT_TRUE(outcome.ok()) << outcome.error_message;
  EXPECT_EQ(outcome.response.body, "client-b");
}

// A kept-alive connection belongs to the certificate it was opened with: requests with
// another certificate (equal content in another object counts as the same) open their own,
// taking turns or all at once.
TEST_P(HttpClientCertificateTest, DifferentCertificatesNeverShareAConnection) {
  TestServer server(EchoPeer, ServerFiles());
  auto client = NewTrustingClient();
  for (int i = 0; i < 3; ++i) {
    for (const char* name : {"client-a", "client-b"}) {
      Outcome outcome = SendAndWait(*client, With(server.Url(), Certificate(name)));
      ASSERT_TRUE(outcome.ok()) << name << ": " << outcome.error_message;
      EXPECT_EQ(outcome.response.body, name);
    }
  }
  EXPECT_EQ(server.accepted(), 2);
  std::map<std::string, std::set<int>> connections;
  for (const SeenRequest& seen : server.requests()) connections[seen.peer].insert(seen.connection);
  ASSERT_EQ(connections.size(), 2u);
  EXPECT_EQ(connections["client-a"].size(), 1u);
  EXPECT_EQ(connections["client-b"].size(), 1u);
  EXPECT_NE(connections["client-a"], connections["client-b"]);

  // All at once: every answer names the certificate its own request carried.
  Collector collector;
  const auto a = Certificate("client-a");
  const auto b = Certificate("client-b");
  for (int i = 0; i < 10; ++i) {
    for (const auto& certificate : {a, b}) {
      const std::string expected = certificate == a ? "client-a" : "client-b";
      client->Send(With(server.Url(), certificate),
                   [expected, done = collector.callback()](Outcome outcome) {
                     EXPECT_TRUE(outcome.ok()) << outcome.error_message;
                     EXPECT_EQ(outcome.response.body, expected);
                     done(std::move(outcome));
                   });
    }
  }
  ASSERT_TRUE(collector.WaitFor(20, milliseconds(5000)));
}

// A server that asks for a certificate but takes clients without one: a request without a
// certificate never goes out on a connection another request authenticated, nor the reverse.
TEST_P(HttpClientCertificateTest, ARequestWithoutACertificateNeverUsesACertifiedConnection) {
  TestServer server(EchoPeer, ServerFiles(/*require_client_certificate=*/false));
  auto client = NewTrustingClient();
  for (int i = 0; i < 3; ++i) {
    for (const char* name : {"client-a", ""}) {
      auto certificate = *name != '\0' ? Certificate(name) : nullptr;
      Outcome outcome = SendAndWait(*client, With(server.Url(), certificate));
      ASSERT_TRUE(outcome.ok()) << "\"" << name << "\": " << outcome.error_message;
      EXPECT_EQ(outcome.response.body, name);
    }
  }
  EXPECT_EQ(server.accepted(), 2);
}

// A server that closes every connection after one answer: each request opens a new connection,
// where the client offers a TLS session it cached. A session carries the client certificate it was
// made with, so resuming another certificate's session (or a session made without one) would
// present the wrong identity: the server must see each request's own certificate every time.
TEST_P(HttpClientCertificateTest, NewConnectionsNeverResumeAnotherCertificatesSession) {
  TestServer server(
      [](const SeenRequest& request) {
        return Reply{Reply::kRespondThenClose, HttpResponse(200, request.peer)};
      },
      ServerFiles(/*require_client_certificate=*/false));
  auto client = NewTrustingClient();
  constexpr int kRounds = 3;
  for (int i = 0; i < kRounds; ++i) {
    for (const char* name : {"client-a", "client-b", ""}) {
      auto certificate = *name != '\0' ? Certificate(name) : nullptr;
      Outcome outcome = SendAndWait(*client, With(server.Url(), certificate));
      ASSERT_TRUE(outcome.ok()) << "\"" << name << "\": " << outcome.error_message;
      EXPECT_EQ(outcome.response.body, name) << "round " << i;
    }
  }
  EXPECT_EQ(server.accepted(), 3 * kRounds);
  // Sessions were resumed (same certificate, same session cache): the check above had teeth.
  int resumed = 0;
  for (const SeenRequest& seen : server.requests()) resumed += seen.resumed;
  EXPECT_GT(resumed, 0);
}

}  // namespace
}  // namespace herald::http
