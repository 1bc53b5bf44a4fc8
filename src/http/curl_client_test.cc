// Both engines (libcurl over HTTP/1.1, nghttp2 over HTTP/2): requests and responses, failures
// and their kinds, the response cap and the event loop across resolved names and connections
// closed by servers.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "http/client.h"
#include "http/http_test_util.h"

namespace herald::http {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the shared http test helpers

class HttpClientTest : public HttpEngineTest {};
INSTANTIATE_TEST_SUITE_P(Engines, HttpClientTest, AllEngines(), HttpEngineTest::Name);

TEST_P(HttpClientTest, PostRoundTripCarriesHeadersAndBody) {
  TestServer server(
      [](const SeenRequest&) {
        return Reply{Reply::kRespond,
                     HttpResponse(201, "created", "X-Trace: abc\r\nX-Multi: 1\r\nX-Multi: 2\r\n")};
      },
      Server());
  auto client = NewEngineClient(LoopbackOptions());
  Request request;
  request.url = server.Url("/v1/send?x=1");
  request.headers = {{"Authorization", "Bearer t0k"}, {"Content-Type", "application/json"}};
  request.body = "{\"data\":\"" + std::string(3000, 'x') + "\"}";

  Outcome outcome = SendAndWait(*client, request);
  ASSERT_TRUE(outcome.ok()) << outcome.error_message;
  EXPECT_EQ(outcome.response.status, 201);
  EXPECT_EQ(outcome.response.body, "created");
  EXPECT_EQ(outcome.response.http_version, HttpVersion());
  EXPECT_EQ(outcome.response.Header("x-trace"), "abc");
  EXPECT_EQ(outcome.response.Header("X-Trace"), "abc");
  EXPECT_EQ(outcome.response.Header("x-multi"), "1");
  EXPECT_EQ(outcome.response.Header("missing"), "");
  for (const auto& header : outcome.response.headers) {
    EXPECT_EQ(header.first.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), std::string::npos);
  }

  auto seen = server.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/v1/send?x=1");
  EXPECT_EQ(seen[0].body, request.body);
  ASSERT_NE(seen[0].Find("authorization"), nullptr);
  EXPECT_EQ(*seen[0].Find("authorization"), "Bearer t0k");
  EXPECT_EQ(*seen[0].Find("content-type"), "application/json");
  EXPECT_EQ(*seen[0].Find("user-agent"), "herald-test/1");
  EXPECT_EQ(seen[0].Find("expect"), nullptr);  // no 100-continue round trip
}

TEST_P(HttpClientTest, GetSendsNoBodyAndNoInventedContentType) {
  TestServer server(
      [](const SeenRequest& request) {
        return Reply{Reply::kRespond, HttpResponse(200, request.method + " " + request.target)};
      },
      Server());
  auto client = NewEngineClient(LoopbackOptions());
  Outcome outcome = SendAndWait(*client, Get(server.Url("/status")));
  ASSERT_TRUE(outcome.ok()) << outcome.error_message;
  EXPECT_EQ(outcome.response.body, "GET /status");
  auto seen = server.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].body.empty());
  EXPECT_EQ(seen[0].Find("content-type"), nullptr);

  Request del = Get(server.Url("/token/1"));
  del.method = "DELETE";
  outcome = SendAndWait(*client, del);
  ASSERT_TRUE(outcome.ok()) << outcome.error_message;
  EXPECT_EQ(outcome.response.body, "DELETE /token/1");
}

TEST_P(HttpClientTest, KeepsOnlyFinalResponseHeaders) {
  TestServer server(
      [](const SeenRequest&) {
        return Reply{Reply::kRespond, "HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n" +
                                          HttpResponse(200, "ok", "X-Final: yes\r\n")};
      },
      Server());
  auto client = NewEngineClient(LoopbackOptions());
  Outcome outcome = SendAndWait(*client, Get(server.Url()));
  ASSERT_TRUE(outcome.ok()) << outcome.error_message;
  EXPECT_EQ(outcome.response.status, 200);
  EXPECT_EQ(outcome.response.Header("x-final"), "yes");
  EXPECT_EQ(outcome.response.Header("x-interim"), "");
}

TEST_P(HttpClientTest, TimesOutWhenServerNeverAnswers) {
  TestServer server([](const SeenRequest&) { return Reply{Reply::kHang}; }, Server());
  auto client = NewEngineClient(LoopbackOptions());
  Request request = Get(server.Url());
  request.timeout = milliseconds(300);
  auto start = Clock::now();
  Outcome outcome = SendAndWait(*client, request);
  EXPECT_EQ(outcome.error, TransportError::kTimeout) << outcome.error_message;
  EXPECT_TRUE(IsTransient(outcome.error));
  EXPECT_GE(Since(start), milliseconds(250));
  EXPECT_LT(Since(start), milliseconds(1500));
}

TEST_P(HttpClientTest, RefusedConnectionIsConnectError) {
  auto client = NewEngineClient(LoopbackOptions());
  Outcome outcome =
      SendAndWait(*client, Get("http://127.0.0.1:" + std::to_string(FreePort()) + "/"));
  EXPECT_EQ(outcome.error, TransportError::kConnect) << outcome.error_message;
  EXPECT_FALSE(outcome.error_message.empty());
  EXPECT_TRUE(IsTransient(outcome.error));
}

TEST_P(HttpClientTest, ConnectionClosedWithoutAnswerIsTransient) {
  TestServer server([](const SeenRequest&) { return Reply{Reply::kClose}; }, Server());
  auto client = NewEngineClient(LoopbackOptions());
  Outcome outcome = SendAndWait(*client, Get(server.Url()));
  EXPECT_TRUE(outcome.error == TransportError::kConnect ||
              outcome.error == TransportError::kProtocol)
      << TransportErrorName(outcome.error) << ": " << outcome.error_message;
  EXPECT_TRUE(IsTransient(outcome.error));
}

TEST_P(HttpClientTest, ResolvedNamesAndIdleConnectionsClosedByTheServerKeepWorking) {
  // Each new host:port is resolved first (libcurl's resolver may have the event loop watch a
  // socket of its own, which it closes itself), and connections a server closes while idle leave
  // the event loop: socket numbers get reused across every kind of socket (SocketWatchTest has
  // the exact cases).
  std::vector<std::unique_ptr<TestServer>> servers;
  for (int i = 0; i < 8; ++i) {
    Reply::Kind kind = i % 2 == 0 ? Reply::kRespond : Reply::kRespondThenClose;
    servers.push_back(std::make_unique<TestServer>(
        [kind](const SeenRequest&) {
          return Reply{kind, HttpResponse(200, "ok")};
        },
        Server()));
  }
  auto client = NewEngineClient(LoopbackOptions());
  for (int round = 0; round < 3; ++round) {
    for (const auto& server : servers) {
      std::string by_name = "http://" + LoopbackName() + ":" + std::to_string(server->port()) + "/";
      for (const std::string& url : {by_name, server->Url()}) {
        Outcome outcome = SendAndWait(*client, Get(url));
        ASSERT_TRUE(outcome.ok()) << url << ": " << outcome.error_message;
        EXPECT_EQ(outcome.response.body, "ok");
      }
    }
    std::this_thread::sleep_for(milliseconds(20));  // closed connections report EOF while idle
  }
}

TEST_P(HttpClientTest, CapsResponseBodies) {
  TestServer server(
      [](const SeenRequest& request) {
        if (request.target == "/exact") {
          return Reply{Reply::kRespond, HttpResponse(200, std::string(1000, 'a'))};
        }
        if (request.target == "/big") {
          return Reply{Reply::kRespond, HttpResponse(200, std::string(5000, 'b'))};
        }
        if (request.target == "/big-error") {
          return Reply{Reply::kRespond, HttpResponse(503, std::string(5000, 'e'))};
        }
        // Chunked: no Content-Length, so only the running count can catch it.
        std::string chunk(2500, 'c');
        return Reply{Reply::kRespond,
                     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9c4\r\n" + chunk +
                         "\r\n9c4\r\n" + chunk + "\r\n0\r\n\r\n"};
      },
      Server());
  ClientOptions options = LoopbackOptions();
  options.max_response_bytes = 1000;
  auto client = NewEngineClient(options);

  Outcome exact = SendAndWait(*client, Get(server.Url("/exact")));
  ASSERT_TRUE(exact.ok()) << exact.error_message;
  EXPECT_EQ(exact.response.body.size(), 1000u);
  EXPECT_FALSE(exact.response.body_truncated);
  // Over the limit: the server's status and headers, the body cut short and marked so.
  for (const char* path : {"/big", "/chunked", "/big-error"}) {
    Outcome outcome = SendAndWait(*client, Get(server.Url(path)));
    ASSERT_TRUE(outcome.ok()) << path << ": " << outcome.error_message;
    EXPECT_EQ(outcome.response.status, std::string(path) == "/big-error" ? 503 : 200) << path;
    EXPECT_TRUE(outcome.response.body_truncated) << path;
    EXPECT_LE(outcome.response.body.size(), 1000u) << path;
  }
}

TEST_P(HttpClientTest, ThrowingCallbackDoesNotStopTheClient) {
  TestServer server(
      [](const SeenRequest&) {
        return Reply{Reply::kRespond, HttpResponse(200, "ok")};
      },
      Server());
  auto client = NewEngineClient(LoopbackOptions());
  client->Send(Get(server.Url()), [](Outcome) { throw std::runtime_error("callback failed"); });
  Outcome outcome = SendAndWait(*client, Get(server.Url()));
  EXPECT_TRUE(outcome.ok()) << outcome.error_message;
}

TEST(CurlClientTest, ErrorNames) {
  EXPECT_STREQ(TransportErrorName(TransportError::kForbiddenTarget), "forbidden_target");
  EXPECT_STREQ(TransportErrorName(TransportError::kTimeout), "timeout");
  EXPECT_TRUE(IsTransient(TransportError::kDns));
  EXPECT_FALSE(IsTransient(TransportError::kTls));
  EXPECT_TRUE(IsTransient(TransportError::kTlsHandshake));
  EXPECT_STREQ(TransportErrorName(TransportError::kTlsHandshake), "tls_handshake");
  EXPECT_FALSE(IsTransient(TransportError::kNone));
}

}  // namespace
}  // namespace herald::http
