// Outbound safety, for both engines: no private targets unless allowed, and requests that could
// be turned against their target (other schemes, header injection, bad methods) are never sent.
#include <gtest/gtest.h>

#include <string>

#include "http/client.h"
#include "http/http_test_util.h"

namespace herald::http {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the shared http test helpers

class HttpClientSafetyTest : public HttpEngineTest {};
INSTANTIATE_TEST_SUITE_P(Engines, HttpClientSafetyTest, AllEngines(), HttpEngineTest::Name);

TEST_P(HttpClientSafetyTest, RefusesPrivateTargetsUnlessAllowed) {
  TestServer server(
      [](const SeenRequest&) {
        return Reply{Reply::kRespond, HttpResponse(200, "")};
      },
      Server());
  ClientOptions options = LoopbackOptions();
  options.allow_private_targets = false;
  auto strict = NewEngineClient(options);
  const std::string port = std::to_string(server.port());
  for (const std::string& url :
       {server.Url(), "http://localhost:" + port + "/", "http://[::1]:" + port + "/"}) {
    Outcome outcome = SendAndWait(*strict, Get(url));
    EXPECT_EQ(outcome.error, TransportError::kForbiddenTarget)
        << url << " " << TransportErrorName(outcome.error) << ": " << outcome.error_message;
    EXPECT_EQ(outcome.error_message,
              "target resolves to a private address (set HERALD_ALLOW_PRIVATE_TARGETS=1 to allow)");
    EXPECT_FALSE(IsTransient(outcome.error));
  }
  EXPECT_EQ(server.accepted(), 0);

  auto permissive = NewEngineClient(LoopbackOptions());
  Outcome outcome = SendAndWait(*permissive, Get(server.Url()));
  EXPECT_TRUE(outcome.ok()) << outcome.error_message;
  EXPECT_EQ(server.accepted(), 1);
}

TEST_P(HttpClientSafetyTest, RejectsUnusableRequests) {
  auto client = NewEngineClient(LoopbackOptions());
  Request ftp = Get("ftp://example.com/file");
  Request relative = Get("/just/a/path");
  Request injected = Get("http://127.0.0.1:9/");
  injected.headers = {{"X-Evil", "a\r\nHost: elsewhere"}};
  Request bad_name = Get("http://127.0.0.1:9/");
  bad_name.headers = {{"Bad Name", "x"}};
  Request bad_method = Get("http://127.0.0.1:9/");
  bad_method.method = "GE T";
  for (const Request& request : {ftp, relative, injected, bad_name, bad_method}) {
    Outcome outcome = SendAndWait(*client, request);
    EXPECT_EQ(outcome.error, TransportError::kBadRequest) << request.url;
    EXPECT_FALSE(IsTransient(outcome.error));
  }
}

}  // namespace
}  // namespace herald::http
