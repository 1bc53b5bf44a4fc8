// HTTP/2 against nghttpd (apt package nghttp2-server); skipped when it is absent.
#include <curl/curl.h>
#include <gtest/gtest.h>

#include <string>

#include "http/client.h"
#include "http/http_test_util.h"

namespace herald::http {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the shared http test helpers

TEST(CurlClientTest, H2cPriorKnowledgeRoundTrips) {
  std::string nghttpd = FindProgram("nghttpd");
  if (nghttpd.empty()) GTEST_SKIP() << "nghttpd not installed (apt install nghttp2-server)";
  TempDir dir;
  dir.Write("hello.txt", "hello over h2");
  Nghttpd server(nghttpd, dir);
  ASSERT_TRUE(server.Ready());
  CountingProxy proxy(server.port());
  Collector collector;
  auto client = NewCurlClient(LoopbackOptions());

  constexpr int kRequests = 60;
  for (int i = 0; i < kRequests; ++i) {
    Request request = Get("http://127.0.0.1:" + std::to_string(proxy.port()) + "/hello.txt");
    request.http2_prior_knowledge = true;
    client->Send(request, collector.callback());
  }
  ASSERT_TRUE(collector.WaitFor(kRequests));
  for (const auto& outcome : collector.outcomes()) {
    ASSERT_TRUE(outcome.ok()) << outcome.error_message;
    EXPECT_EQ(outcome.response.status, 200);
    EXPECT_EQ(outcome.response.http_version, "2");
    EXPECT_EQ(outcome.response.body, "hello over h2");
  }
  // libcurl < 8.0.0 cannot reuse h2c connections (curl/curl#10634): one fresh connection each.
  if (curl_version_info(CURLVERSION_NOW)->version_num >= 0x080000) {
    EXPECT_EQ(proxy.accepted(), 1);
  } else {
    EXPECT_EQ(proxy.accepted(), kRequests);
  }
}

}  // namespace
}  // namespace herald::http
