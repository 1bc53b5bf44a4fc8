// The nghttp2 engine's own behaviour (the behaviour it shares with libcurl is tested for both in
// curl_client*_test.cc): many streams on one connection and never a reset for a finished one,
// GOAWAY and REFUSED_STREAM answered by sending the unprocessed streams again (never twice),
// connections lost or full, ALPN, timeouts, and NewClient's routing. Against TestServer's HTTP/2
// mode and nghttpd (apt package nghttp2-server; those tests are skipped when it is absent).
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "http/client.h"
#include "http/http_test_util.h"

namespace herald::http {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the shared http test helpers

ServerOptions Http2(int goaway_after_streams = 0, std::uint32_t max_concurrent_streams = 0) {
  ServerOptions options;
  options.protocol = ServerOptions::Protocol::kHttp2;
  options.goaway_after_streams = goaway_after_streams;
  options.max_concurrent_streams = max_concurrent_streams;
  return options;
}

Reply EchoTarget(const SeenRequest& request) {
  return Reply{Reply::kRespond, HttpResponse(200, request.target)};
}

// The targets the server processed, each with how often.
std::map<std::string, int> Processed(const TestServer& server) {
  std::map<std::string, int> counts;
  for (const SeenRequest& seen : server.requests()) ++counts[seen.target];
  return counts;
}

// `count` GETs of /<prefix><n>, all at once; every outcome must be a 200 echoing its path.
void SendBatch(Client& client, const std::string& base, const std::string& prefix, int count) {
  Collector collector;
  for (int i = 0; i < count; ++i) {
    std::string path = "/" + prefix + std::to_string(i);
    client.Send(Get(base + path), [path, done = collector.callback()](Outcome outcome) {
      EXPECT_TRUE(outcome.ok()) << path << ": " << outcome.error_message;
      EXPECT_EQ(outcome.response.status, 200) << path;
      EXPECT_EQ(outcome.response.body, path);
      EXPECT_EQ(outcome.response.http_version, "2");
      done(std::move(outcome));
    });
  }
  ASSERT_TRUE(collector.WaitFor(static_cast<std::size_t>(count), milliseconds(10'000)));
}

// 2000 requests, 200 at a time: one connection carries them all, the server processes each
// exactly once and sees no RST_STREAM (libcurl resets every finished stream; after about a
// thousand resets nghttp2 servers end the session and unanswered requests got sent twice).
TEST(H2ClientTest, ThousandsOfRequestsShareOneConnectionWithoutResets) {
  TestServer server(EchoTarget, Http2());
  auto client = NewH2Client(LoopbackOptions());
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  constexpr int kBatches = 10;
  constexpr int kBatch = 200;
  for (int b = 0; b < kBatches; ++b) {
    SendBatch(*client, base, std::to_string(b) + "-", kBatch);
  }
  EXPECT_EQ(server.accepted(), 1);
  EXPECT_EQ(server.received(), kBatches * kBatch);
  EXPECT_EQ(server.streams(), kBatches * kBatch);
  EXPECT_EQ(server.resets(), 0);
  auto processed = Processed(server);
  EXPECT_EQ(processed.size(), static_cast<std::size_t>(kBatches * kBatch));
  for (const auto& [target, count] : processed) EXPECT_EQ(count, 1) << target;
}

// The same against nghttpd (whose nghttp2 counts resets), over h2c through a counting proxy,
// 100 at a time (nghttpd's SETTINGS_MAX_CONCURRENT_STREAMS: more would open a second connection).
TEST(H2ClientTest, ThousandsOfRequestsShareOneNghttpdConnection) {
  std::string nghttpd = FindProgram("nghttpd");
  if (nghttpd.empty()) GTEST_SKIP() << "nghttpd not installed (apt install nghttp2-server)";
  TempDir dir;
  dir.Write("hello.txt", "hello over h2");
  Nghttpd server(nghttpd, dir);
  ASSERT_TRUE(server.Ready());
  CountingProxy proxy(server.port());
  auto client = NewH2Client(LoopbackOptions());
  const std::string url = "http://127.0.0.1:" + std::to_string(proxy.port()) + "/hello.txt";
  for (int b = 0; b < 30; ++b) {
    Collector collector;
    for (int i = 0; i < 100; ++i) client->Send(Get(url), collector.callback());
    ASSERT_TRUE(collector.WaitFor(100, milliseconds(10'000)));
    for (const auto& outcome : collector.outcomes()) {
      ASSERT_TRUE(outcome.ok()) << outcome.error_message;
      EXPECT_EQ(outcome.response.body, "hello over h2");
      EXPECT_EQ(outcome.response.http_version, "2");
    }
  }
  EXPECT_EQ(proxy.accepted(), 1);
}

// The server sends GOAWAY while streams above its last_stream_id are in flight: those were never
// processed and go out again on a new connection; none fails, none is processed twice.
TEST(H2ClientTest, GoAwayResendsTheUnprocessedStreamsOnce) {
  TestServer server(
      [](const SeenRequest& request) {
        return Reply{Reply::kRespond, HttpResponse(200, request.target), milliseconds(20)};
      },
      Http2(/*goaway_after_streams=*/40));
  auto client = NewH2Client(LoopbackOptions());
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  constexpr int kRequests = 200;
  SendBatch(*client, base, "", kRequests);
  EXPECT_EQ(server.received(), kRequests);
  auto processed = Processed(server);
  EXPECT_EQ(processed.size(), static_cast<std::size_t>(kRequests));
  for (const auto& [target, count] : processed) EXPECT_EQ(count, 1) << target;
  EXPECT_GE(server.accepted(), kRequests / 40);
  EXPECT_GT(server.streams(), kRequests);  // some streams reached a server that then refused them
  EXPECT_EQ(server.resets(), 0);
}

// RST_STREAM REFUSED_STREAM means "not processed": the request goes again, transparently.
TEST(H2ClientTest, RefusedStreamsAreSentAgain) {
  std::mutex mu;
  std::set<std::string> refused;
  TestServer server(
      [&](const SeenRequest& request) {
        std::lock_guard lock(mu);
        if (refused.insert(request.target).second) return Reply{Reply::kRefuse};
        return EchoTarget(request);
      },
      Http2());
  auto client = NewH2Client(LoopbackOptions());
  SendBatch(*client, "http://127.0.0.1:" + std::to_string(server.port()), "", 20);
  EXPECT_EQ(server.received(), 40);  // each refused once, then processed
  EXPECT_EQ(server.accepted(), 1);
}

// A server that refuses a request every time: it fails after a few attempts, as a protocol error.
TEST(H2ClientTest, ARequestRefusedEveryTimeFails) {
  TestServer server([](const SeenRequest&) { return Reply{Reply::kRefuse}; }, Http2());
  auto client = NewH2Client(LoopbackOptions());
  Outcome outcome =
      SendAndWait(*client, Get("http://127.0.0.1:" + std::to_string(server.port()) + "/"));
  EXPECT_EQ(outcome.error, TransportError::kProtocol) << outcome.error_message;
  EXPECT_GT(server.received(), 1);
}

// The connection goes away with several streams the server has taken: each fails with kConnect
// (the queue retries; the server may have processed them), none is sent again by the client.
TEST(H2ClientTest, ConnectionLostWithStreamsInFlightFailsThemWithConnect) {
  TestServer server(
      [](const SeenRequest& request) {
        if (request.target == "/4") return Reply{Reply::kClose, "", milliseconds(50)};
        return Reply{Reply::kHang};
      },
      Http2());
  auto client = NewH2Client(LoopbackOptions());
  Collector collector;
  for (int i = 0; i < 5; ++i) {
    client->Send(Get(server.Url("/" + std::to_string(i))), collector.callback());
  }
  ASSERT_TRUE(collector.WaitFor(5));
  for (const auto& outcome : collector.outcomes()) {
    EXPECT_EQ(outcome.error, TransportError::kConnect)
        << TransportErrorName(outcome.error) << ": " << outcome.error_message;
  }
  EXPECT_EQ(server.received(), 5);
  EXPECT_EQ(server.accepted(), 1);
}

// A timed-out request resets its own stream (RST_STREAM CANCEL) and nothing else: the connection
// goes on carrying the other requests.
TEST(H2ClientTest, ATimeoutResetsOnlyItsStream) {
  TestServer server(
      [](const SeenRequest& request) {
        return request.target == "/slow" ? Reply{Reply::kHang} : EchoTarget(request);
      },
      Http2());
  auto client = NewH2Client(LoopbackOptions());
  Request slow = Get(server.Url("/slow"));
  slow.timeout = milliseconds(200);
  Collector collector;
  client->Send(slow, collector.callback());
  Outcome fast = SendAndWait(*client, Get(server.Url("/fast")));
  EXPECT_TRUE(fast.ok()) << fast.error_message;
  ASSERT_TRUE(collector.WaitFor(1));
  EXPECT_EQ(collector.outcomes()[0].error, TransportError::kTimeout);
  EXPECT_TRUE(WaitUntil([&] { return server.resets() == 1; }));
  fast = SendAndWait(*client, Get(server.Url("/after")));
  EXPECT_TRUE(fast.ok()) << fast.error_message;
  EXPECT_EQ(server.accepted(), 1);
}

// A server allowing 5 streams per connection: the client opens another connection when the first
// is full, up to max_connections_per_host, and queues the rest; never more than 5 at once on one.
TEST(H2ClientTest, FullConnectionsOpenMoreUpToTheLimit) {
  TestServer server(
      [](const SeenRequest& request) {
        return Reply{Reply::kRespond, HttpResponse(200, request.target), milliseconds(30)};
      },
      Http2(0, /*max_concurrent_streams=*/5));
  ClientOptions options = LoopbackOptions();
  options.max_connections_per_host = 2;
  auto client = NewH2Client(options);
  // One request first: the connection, and the server's limit, are known before the burst.
  ASSERT_TRUE(SendAndWait(*client, Get(server.Url("/first"))).ok());
  SendBatch(*client, "http://127.0.0.1:" + std::to_string(server.port()), "", 40);
  EXPECT_EQ(server.accepted(), 2);
  EXPECT_LE(server.max_concurrent(), 10);
  EXPECT_GE(server.max_concurrent(), 6);
}

TEST(H2ClientTest, LargeBodiesFlowBothWays) {
  const std::string big(3 << 20, 'r');
  TestServer server(
      [&big](const SeenRequest& request) {
        return Reply{
            Reply::kRespond,
            HttpResponse(200, big, "X-Got: " + std::to_string(request.body.size()) + "\r\n")};
      },
      Http2());
  ClientOptions options = LoopbackOptions();
  options.max_response_bytes = 0;
  auto client = NewH2Client(options);
  Request request;
  request.url = server.Url("/upload");
  request.body = std::string(2 << 20, 'q');
  Outcome outcome = SendAndWait(*client, request);
  ASSERT_TRUE(outcome.ok()) << outcome.error_message;
  EXPECT_EQ(outcome.response.Header("x-got"), std::to_string(2 << 20));
  EXPECT_EQ(outcome.response.body.size(), big.size());
  EXPECT_FALSE(outcome.response.body_truncated);
}

// Over TLS the server must select h2 by ALPN; one that does not (an HTTP/1.1 server) is a
// protocol error, not a TLS one.
TEST(H2ClientTest, TlsWithoutAlpnH2IsAProtocolError) {
  std::string openssl = FindProgram("openssl");
  if (openssl.empty()) GTEST_SKIP() << "needs the openssl CLI";
  TempDir dir;
  TestPki pki(openssl, dir);
  ASSERT_TRUE(pki.MakeCa("ca", "Herald test CA"));
  ASSERT_TRUE(pki.IssueServer("server", "ca"));
  ClientOptions options = LoopbackOptions();
  options.ca_file = dir.File("ca.pem");
  auto client = NewH2Client(options);
  for (bool h2_server : {false, true}) {
    ServerOptions server_options;
    server_options.protocol =
        h2_server ? ServerOptions::Protocol::kHttp2 : ServerOptions::Protocol::kHttp1;
    server_options.tls = TlsServerFiles{dir.File("server.pem"), dir.File("server.key"), "", false};
    server_options.alpn_h2 = false;
    TestServer server(EchoTarget, server_options);
    Outcome outcome = SendAndWait(*client, Get(server.Url("/x")));
    EXPECT_EQ(outcome.error, TransportError::kProtocol)
        << TransportErrorName(outcome.error) << ": " << outcome.error_message;
    EXPECT_NE(outcome.error_message.find("ALPN"), std::string::npos) << outcome.error_message;
    EXPECT_EQ(server.received(), 0);
  }
}

// NewClient: HTTP/2 prior knowledge goes to the nghttp2 engine, anything else to libcurl; both
// share the per-key limits and the in-flight count, and stop together.
TEST(H2ClientTest, NewClientRoutesByPriorKnowledge) {
  TestServer h1(EchoTarget);
  TestServer h2(
      [](const SeenRequest& request) {
        return Reply{Reply::kRespond, HttpResponse(200, request.target), milliseconds(100)};
      },
      Http2());
  auto client = NewClient(LoopbackOptions());
  Request plain = Get(h1.Url("/plain"));
  Outcome outcome = SendAndWait(*client, plain);
  ASSERT_TRUE(outcome.ok()) << outcome.error_message;
  EXPECT_EQ(outcome.response.http_version, "1.1");

  client->SetConcurrency("k", 1);
  Collector collector;
  for (int i = 0; i < 3; ++i) {
    Request request = Get(h2.Url("/h2"));
    request.http2_prior_knowledge = true;
    request.concurrency_key = "k";
    client->Send(request, collector.callback());
  }
  EXPECT_EQ(client->InFlight(), 3u);
  ASSERT_TRUE(collector.WaitFor(3));
  for (const auto& result : collector.outcomes()) {
    ASSERT_TRUE(result.ok()) << result.error_message;
    EXPECT_EQ(result.response.http_version, "2");
  }
  EXPECT_EQ(h2.max_concurrent(), 1);

  // Shutdown waits for both engines' requests within one grace period.
  Collector last;
  Request hanging = Get(h2.Url("/h2"));
  hanging.http2_prior_knowledge = true;
  client->Send(hanging, last.callback());
  client->Send(Get(h1.Url("/plain")), last.callback());
  client->Shutdown(milliseconds(2000));
  ASSERT_EQ(last.size(), 2u);
  for (const auto& result : last.outcomes()) EXPECT_TRUE(result.ok()) << result.error_message;
  bool called = false;
  client->Send(plain, [&](Outcome result) {
    called = true;
    EXPECT_EQ(result.error, TransportError::kShutdown);
  });
  EXPECT_TRUE(called);
}

// Shutdown from a callback only begins the stop (it never waits there); the rest fail.
TEST(H2ClientTest, ShutdownFromACallbackBeginsTheStop) {
  TestServer server(
      [](const SeenRequest& request) {
        return request.target == "/first" ? EchoTarget(request) : Reply{Reply::kHang};
      },
      Http2());
  auto client = NewClient(LoopbackOptions());
  Collector collector;
  Request hanging = Get(server.Url("/hang"));
  hanging.http2_prior_knowledge = true;
  client->Send(hanging, collector.callback());
  ASSERT_TRUE(WaitUntil([&] { return server.received() == 1; }));
  Request first = Get(server.Url("/first"));
  first.http2_prior_knowledge = true;
  client->Send(first, [&client, done = collector.callback()](Outcome outcome) {
    client->Shutdown(milliseconds(5000));
    done(std::move(outcome));
  });
  ASSERT_TRUE(collector.WaitFor(2));
  auto outcomes = collector.outcomes();
  EXPECT_TRUE(outcomes[0].ok()) << outcomes[0].error_message;
  EXPECT_EQ(outcomes[1].error, TransportError::kShutdown);
}

}  // namespace
}  // namespace herald::http
