// Both engines under load: connections per origin, the per-key concurrency limit, withdrawn
// requests, and Shutdown / the destructor with requests queued and in flight.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "http/client.h"
#include "http/http_test_util.h"

namespace herald::http {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the shared http test helpers

class HttpClientLimitsTest : public HttpEngineTest {};
INSTANTIATE_TEST_SUITE_P(Engines, HttpClientLimitsTest, AllEngines(), HttpEngineTest::Name);

TEST_P(HttpClientLimitsTest, ManyConcurrentRequestsShareFewConnections) {
  TestServer server(
      [](const SeenRequest& request) {
        return Reply{Reply::kRespond, HttpResponse(200, request.target)};
      },
      Server());
  ClientOptions options = LoopbackOptions();
  options.max_connections_per_host = 4;
  Collector collector;
  Collector second;
  auto client = NewEngineClient(options);
  constexpr int kRequests = 500;
  auto start = Clock::now();
  for (int i = 0; i < kRequests; ++i) {
    client->Send(Get(server.Url("/n/" + std::to_string(i))), collector.callback());
  }
  ASSERT_TRUE(collector.WaitFor(kRequests));
  int ok = 0;
  for (const auto& outcome : collector.outcomes()) {
    ok += outcome.ok() && outcome.response.status == 200;
  }
  EXPECT_EQ(ok, kRequests);
  EXPECT_GE(server.accepted(), 1);
  EXPECT_LE(server.accepted(), 4);
  EXPECT_TRUE(WaitUntil([&] { return client->InFlight() == 0; }));

  // A second wave reuses the kept-alive connections.
  for (int i = 0; i < 50; ++i) client->Send(Get(server.Url()), second.callback());
  ASSERT_TRUE(second.WaitFor(50));
  EXPECT_LE(server.accepted(), 4);
  EXPECT_LT(Since(start), milliseconds(2500));
}

TEST_P(HttpClientLimitsTest, DefaultPerKeyLimitBoundsConcurrency) {
  TestServer server(
      [](const SeenRequest&) {
        return Reply{Reply::kRespond, HttpResponse(200, "ok"), milliseconds(80)};
      },
      Server());
  ClientOptions options = LoopbackOptions();
  options.default_concurrency_per_key = 2;
  Collector collector;
  auto client = NewEngineClient(options);
  for (int i = 0; i < 8; ++i) {
    Request request = Get(server.Url());
    request.concurrency_key = "integration-a";
    client->Send(request, collector.callback());
  }
  EXPECT_EQ(client->InFlight(), 8u);
  ASSERT_TRUE(collector.WaitFor(8));
  for (const auto& outcome : collector.outcomes()) EXPECT_TRUE(outcome.ok());
  EXPECT_EQ(server.max_concurrent(), 2);
}

TEST_P(HttpClientLimitsTest, SetConcurrencyLowersAndRaisesTheLimit) {
  TestServer server(
      [](const SeenRequest&) {
        return Reply{Reply::kRespond, HttpResponse(200, "ok"), milliseconds(100)};
      },
      Server());
  Collector collector;
  auto client = NewEngineClient(LoopbackOptions());
  client->SetConcurrency("k", 1);
  for (int i = 0; i < 7; ++i) {
    Request request = Get(server.Url());
    request.concurrency_key = "k";
    client->Send(request, collector.callback());
  }
  ASSERT_TRUE(collector.WaitFor(1));
  EXPECT_EQ(server.max_concurrent(), 1);
  client->SetConcurrency("k", 3);  // the 6 waiting ones now go 3 at a time
  ASSERT_TRUE(collector.WaitFor(7));
  EXPECT_EQ(server.max_concurrent(), 3);
  for (const auto& outcome : collector.outcomes()) EXPECT_TRUE(outcome.ok());
}

// A request waiting for a slot is asked, when its turn comes, whether its sender still wants it:
// one taken back completes as withdrawn and never reaches the server; the others go out.
TEST_P(HttpClientLimitsTest, AWithdrawnRequestIsNeverSent) {
  TestServer server(
      [](const SeenRequest&) {
        return Reply{Reply::kRespond, HttpResponse(200, "ok"), milliseconds(50)};
      },
      Server());
  struct Unwanted : Withdrawal {
    bool Withdrawn(std::uint64_t tag) const override { return tag % 2 == 1; }
  } unwanted;
  Collector collector;
  auto client = NewEngineClient(LoopbackOptions());
  client->SetConcurrency("k", 1);
  for (std::uint64_t i = 0; i < 6; ++i) {
    Request request = Get(server.Url("/" + std::to_string(i)));
    request.concurrency_key = "k";
    request.withdrawal = &unwanted;
    request.withdrawal_tag = i;
    client->Send(request, collector.callback());
  }
  ASSERT_TRUE(collector.WaitFor(6));
  int withdrawn = 0;
  for (const auto& outcome : collector.outcomes()) {
    if (outcome.error == TransportError::kWithdrawn) {
      ++withdrawn;
    } else {
      EXPECT_TRUE(outcome.ok()) << outcome.error_message;
    }
  }
  EXPECT_EQ(withdrawn, 3);
  std::vector<std::string> targets;
  for (const SeenRequest& seen : server.requests()) targets.push_back(seen.target);
  std::sort(targets.begin(), targets.end());
  EXPECT_EQ(targets, (std::vector<std::string>{"/0", "/2", "/4"}));
  EXPECT_FALSE(IsTransient(TransportError::kWithdrawn));
  EXPECT_STREQ(TransportErrorName(TransportError::kWithdrawn), "withdrawn");
}

TEST_P(HttpClientLimitsTest, ShutdownFailsQueuedAndActiveRequestsPromptly) {
  TestServer server([](const SeenRequest&) { return Reply{Reply::kHang}; }, Server());
  ClientOptions options = LoopbackOptions();
  options.default_concurrency_per_key = 1;
  Collector collector;
  auto client = NewEngineClient(options);
  for (int i = 0; i < 7; ++i) {
    Request request = Get(server.Url());
    if (i < 5) request.concurrency_key = "k";  // 1 active + 4 waiting; 2 more unkeyed
    client->Send(request, collector.callback());
  }
  ASSERT_TRUE(WaitUntil([&] { return server.received() == 3; }));
  EXPECT_EQ(client->InFlight(), 7u);

  auto start = Clock::now();
  client->Shutdown(milliseconds(100));
  EXPECT_GE(Since(start), milliseconds(90));
  EXPECT_LT(Since(start), milliseconds(1000));
  ASSERT_EQ(collector.size(), 7u);  // all callbacks ran before Shutdown returned
  for (const auto& outcome : collector.outcomes()) {
    EXPECT_EQ(outcome.error, TransportError::kShutdown);
    EXPECT_FALSE(IsTransient(outcome.error));
  }
  EXPECT_EQ(client->InFlight(), 0u);

  bool called = false;
  client->Send(Get(server.Url()), [&](Outcome outcome) {
    called = true;
    EXPECT_EQ(outcome.error, TransportError::kShutdown);
  });
  EXPECT_TRUE(called);                  // immediately, on this thread
  client->Shutdown(milliseconds(100));  // idempotent
}

TEST_P(HttpClientLimitsTest, ShutdownLetsInFlightRequestsFinishWithinGrace) {
  TestServer server(
      [](const SeenRequest&) {
        return Reply{Reply::kRespond, HttpResponse(200, "ok"), milliseconds(150)};
      },
      Server());
  Collector collector;
  auto client = NewEngineClient(LoopbackOptions());
  for (int i = 0; i < 3; ++i) client->Send(Get(server.Url()), collector.callback());
  auto start = Clock::now();
  client->Shutdown(milliseconds(2000));
  EXPECT_LT(Since(start), milliseconds(1500));
  ASSERT_EQ(collector.size(), 3u);
  for (const auto& outcome : collector.outcomes()) {
    EXPECT_TRUE(outcome.ok()) << outcome.error_message;
  }
}

TEST_P(HttpClientLimitsTest, DestructorFailsPendingRequests) {
  TestServer server([](const SeenRequest&) { return Reply{Reply::kHang}; }, Server());
  Collector collector;
  {
    auto client = NewEngineClient(LoopbackOptions());
    client->Send(Get(server.Url()), collector.callback());
    ASSERT_TRUE(WaitUntil([&] { return server.received() == 1; }));
  }
  ASSERT_EQ(collector.size(), 1u);
  EXPECT_EQ(collector.outcomes()[0].error, TransportError::kShutdown);
}

}  // namespace
}  // namespace herald::http
