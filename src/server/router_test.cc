#include "server/router.h"

#include <gtest/gtest.h>

#include "server/error_reply.h"

namespace herald::server {
namespace {

Reply Dispatch(const Router& router, std::string method, std::string path, Request* out = nullptr) {
  Request request;
  request.method = std::move(method);
  request.path = std::move(path);
  Reply reply;
  router.Dispatch(request, [&](Reply r) { reply = std::move(r); });
  if (out) *out = request;
  return reply;
}

Router MakeRouter() {
  Router router;
  router.Add("GET", "/v1/subscribers/:id", Sync([](Request& r) {
               return Reply{200, "sub:" + r.Param("id")};
             }));
  router.Add("DELETE", "/v1/subscribers/:id/credentials/:providerId", Sync([](Request& r) {
               return Reply{204, r.Param("id") + "|" + r.Param("providerId")};
             }));
  router.Add("GET", "/healthz", Sync([](Request&) { return Reply{200, "ok"}; }));
  return router;
}

TEST(RouterTest, MatchesParamsAndDecodes) {
  Router router = MakeRouter();
  EXPECT_EQ(Dispatch(router, "GET", "/v1/subscribers/u%201%2Fx").body, "sub:u 1/x");
  EXPECT_EQ(Dispatch(router, "DELETE", "/v1/subscribers/a/credentials/fcm").body, "a|fcm");
}

TEST(RouterTest, IgnoresMountPrefix) {
  Router router = MakeRouter();
  EXPECT_EQ(Dispatch(router, "GET", "/novu/api/v1/subscribers/7").body, "sub:7");
  EXPECT_EQ(Dispatch(router, "GET", "/some/prefix/healthz").status, 200);
}

TEST(RouterTest, UnknownPathIs404AndWrongMethodIs405) {
  Router router = MakeRouter();
  Reply missing = Dispatch(router, "GET", "/v1/nothing");
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("\"statusCode\":404"), std::string::npos);
  Reply wrong = Dispatch(router, "POST", "/v1/subscribers/x");
  EXPECT_EQ(wrong.status, 405);
  ASSERT_EQ(wrong.headers.size(), 1u);
  EXPECT_EQ(wrong.headers[0].second, "GET");
}

TEST(RouterTest, EmptyParamDoesNotMatch) {
  Router router = MakeRouter();
  EXPECT_EQ(Dispatch(router, "GET", "/v1/subscribers/").status, 404);
}

TEST(RouterTest, BodyLimitIsTheMatchedRoutes) {
  Router router = MakeRouter();
  router.Add("POST", "/v1/subscribers/import", Sync([](Request&) {
               return Reply{201, "{}"};
             }),
             [](const Request& head) -> std::size_t {
               return head.Header("authorization") == "ok" ? 64 << 20 : 0;
             });
  auto limit = [&](std::string method, std::string path, std::string authorization = "ok") {
    Request head;
    head.method = std::move(method);
    head.path = std::move(path);
    head.headers = {{"authorization", std::move(authorization)}};
    return router.BodyLimitFor(head);
  };
  EXPECT_EQ(limit("POST", "/v1/subscribers/import"), 64u << 20);
  EXPECT_EQ(limit("POST", "/prefix/v1/subscribers/import"), 64u << 20);
  EXPECT_EQ(limit("POST", "/v1/subscribers/import", "nope"), 0u);
  EXPECT_EQ(limit("GET", "/v1/subscribers/import"), 0u);  // GET /:id: the default
  EXPECT_EQ(limit("POST", "/v1/subscribers/other"), 0u);
  EXPECT_EQ(limit("POST", "/v1/nothing"), 0u);
  EXPECT_EQ(limit("POST", "/v1/%zz"), 0u);
}

TEST(RouterTest, BadPercentEncodingIs400) {
  Router router = MakeRouter();
  EXPECT_EQ(Dispatch(router, "GET", "/v1/subscribers/%zz").status, 400);
  EXPECT_EQ(Dispatch(router, "GET", "/v1/subscribers/%4").status, 400);
}

// {data: value} is written around the value's own text: the same bytes as the whole document
// dumped, whatever the value (invalid UTF-8 replaced alike).
TEST(ReplyTest, DataReplyIsTheDocumentWithDataAroundTheValue) {
  for (const Json& value : {Json::object(), Json::array(), Json(nullptr), Json(1.5),
                            Json{{"b", 1}, {"a", {{"z", "x\"y"}, {"bad", "\xff"}}}}}) {
    Reply reply = DataReply(value, 201);
    EXPECT_EQ(reply.status, 201);
    EXPECT_EQ(reply.body, DumpJson(Json{{"data", value}}));
  }
  EXPECT_EQ(DataReply(Json{{"acknowledged", true}}).body, R"({"data":{"acknowledged":true}})");
}

}  // namespace
}  // namespace herald::server
