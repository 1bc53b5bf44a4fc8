// The Pusher Beams adapter against protocols.md §6: the publish-to-users request, Novu's apns /
// fcm / web blocks, identical messages grouped (1,000 users and 200 KiB a request), the error
// statuses and titles of §6.4, the connection test and user-id validation.
#include "providers/pusher_beams/pusher_beams_provider.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "providers/provider_test_util.h"
#include "providers/registry.h"
#include "providers/spec_test_util.h"

namespace herald::providers {
namespace {

using test::BatchRefusalReason;
using test::BodyOf;
using test::Failure;
using test::HeaderOf;
using test::Plan;
using test::ProbeRequest;
using test::Reply;
using test::SingleBody;

constexpr const char* kInstance = "8f9a6e22-2483-49aa-8552-125f1a4c5781";
constexpr const char* kSecret = "C54D42FB7CD2D408DDB22D7A0166F1D";
constexpr const char* kUrl =
    "https://8f9a6e22-2483-49aa-8552-125f1a4c5781.pushnotifications.pusher.com/publish_api/v1/"
    "instances/8f9a6e22-2483-49aa-8552-125f1a4c5781/publishes/users";

std::unique_ptr<Provider> Make(const Json& credentials = test::ValidCredentials("pusher-beams")) {
  return test::MakeProvider("pusher-beams", credentials);
}

PushMessage Message(int n, std::string user = "") {
  return test::NumberedMessage(n, user.empty() ? "user-" + std::to_string(n) : std::move(user));
}

std::vector<Outcome> Classify(const Provider& provider, std::size_t n, const http::Outcome& reply) {
  std::vector<PushMessage> messages;
  for (std::size_t i = 0; i < n; ++i) messages.push_back(Message(static_cast<int>(i)));
  return test::Classify(provider, messages, reply);
}

TEST(PusherBeamsProviderTest, PublishesToUsersWithTheSecretKey) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  EXPECT_EQ(provider->max_batch(), 1000u);
  BatchPlan plan = Plan(*provider, {Message(1), Message(2)});
  ASSERT_EQ(plan.requests.size(), 1u);
  const http::Request& request = plan.requests[0].request;
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.url, kUrl);
  EXPECT_EQ(HeaderOf(request, "Authorization"), std::string("Bearer ") + kSecret);
  EXPECT_EQ(HeaderOf(request, "Content-Type"), "application/json");
  EXPECT_EQ(HeaderOf(request, "Accept"), "application/json");
  Json body = BodyOf(plan.requests[0]);
  EXPECT_EQ(body["users"], Json::array({"user-1", "user-2"}));
  EXPECT_EQ(request.body.rfind("{\"users\":[", 0), 0u);

  Json credentials = test::ValidCredentials("pusher-beams");
  credentials["baseUrl"] = "http://127.0.0.1:9999";
  EXPECT_EQ(Plan(*Make(credentials), {Message(1)}).requests[0].request.url,
            std::string("http://127.0.0.1:9999/publish_api/v1/instances/") + kInstance +
                "/publishes/users");
}

TEST(PusherBeamsProviderTest, BlocksAsNovuBuildsThem) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  Json body = SingleBody(*provider, Message(1));
  const Json data = {{"orderId", 7}};
  EXPECT_EQ(body["apns"],
            Json({{"aps", {{"alert", {{"title", "Hello Ann"}, {"body", "Your order shipped"}}}}},
                  {"data", data}}));
  EXPECT_EQ(body["fcm"],
            Json({{"notification", {{"title", "Hello Ann"}, {"body", "Your order shipped"}}},
                  {"data", data}}));
  EXPECT_EQ(body["web"],
            Json({{"notification", {{"title", "Hello Ann"}, {"body", "Your order shipped"}}},
                  {"data", data}}));

  PushMessage m = Message(2);
  m.overrides = {{"sound", "ping"},
                 {"badge", 3},
                 {"categoryId", "ORDER"},
                 {"channelId", "orders"},
                 {"clickAction", "OPEN"},
                 {"color", "#ff0000"},
                 {"icon", "https://example.com/i.png"},
                 {"tag", "t1"},
                 {"ttl", 3600},
                 {"web", {{"notification", {{"deep_link", "https://example.com/o/7"}}}}},
                 {"apns", {{"aps", {{"mutable-content", 1}}}}}};
  body = SingleBody(*provider, m);
  EXPECT_EQ(body["apns"]["aps"]["badge"], 3);
  EXPECT_EQ(body["apns"]["aps"]["category"], "ORDER");
  EXPECT_EQ(body["apns"]["aps"]["sound"], "ping");
  EXPECT_EQ(body["apns"]["aps"]["mutable-content"], 1);
  EXPECT_EQ(body["apns"]["aps"]["alert"]["title"], "Hello Ann");  // merged, not replaced
  const Json& fcm = body["fcm"]["notification"];
  EXPECT_EQ(fcm["android_channel_id"], "orders");
  EXPECT_EQ(fcm["click_action"], "OPEN");
  EXPECT_EQ(fcm["color"], "#ff0000");
  EXPECT_EQ(fcm["icon"], "https://example.com/i.png");
  EXPECT_EQ(fcm["sound"], "ping");
  EXPECT_EQ(fcm["tag"], "t1");
  EXPECT_EQ(body["fcm"]["time_to_live"], 3600);
  EXPECT_EQ(body["web"]["time_to_live"], 3600);
  EXPECT_EQ(body["web"]["notification"]["icon"], "https://example.com/i.png");
  EXPECT_EQ(body["web"]["notification"]["deep_link"], "https://example.com/o/7");
  EXPECT_FALSE(body["web"]["notification"].contains("sound"));
}

TEST(PusherBeamsProviderTest, MessagesItCannotExpressAreRefused) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  PushMessage m = Message(1);
  m.overrides = {{"ttl", 2419201}};
  EXPECT_EQ(BatchRefusalReason(*provider, m), "INVALID_OVERRIDES");
  m.overrides = {{"badge", "3"}};
  EXPECT_EQ(BatchRefusalReason(*provider, m), "INVALID_OVERRIDES");
  m.overrides = {{"web", "x"}};
  EXPECT_EQ(BatchRefusalReason(*provider, m), "INVALID_OVERRIDES");
  m.overrides = {{"data", {{"pusher", 1}}}};
  EXPECT_EQ(BatchRefusalReason(*provider, m), "RESERVED_DATA_KEY");
  m.overrides = {{"web", {{"data", {{"pusher", {{"x", 1}}}}}}}};
  EXPECT_EQ(BatchRefusalReason(*provider, m), "RESERVED_DATA_KEY");
  m.overrides = {{"data", {{"big", std::string(70 * 1024, 'x')}}}};
  EXPECT_EQ(BatchRefusalReason(*provider, m), "MESSAGE_TOO_LARGE");
}

TEST(PusherBeamsProviderTest, IdenticalMessagesShareAPublish) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  std::vector<PushMessage> messages = {Message(1), Message(2), Message(3), Message(4, "user-1")};
  messages[2].content = "Something else";
  BatchPlan plan = Plan(*provider, messages);
  ASSERT_EQ(plan.requests.size(), 3u);
  EXPECT_EQ(plan.requests[0].messages, (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(plan.requests[1].messages, (std::vector<std::size_t>{2}));
  EXPECT_EQ(plan.requests[2].messages, (std::vector<std::size_t>{3}));  // user-1 again

  std::vector<PushMessage> many;
  for (int i = 0; i < 2500; ++i) many.push_back(Message(i));
  plan = Plan(*provider, many);
  ASSERT_EQ(plan.requests.size(), 3u);
  EXPECT_EQ(plan.requests[0].messages.size(), 1000u);
  EXPECT_EQ(plan.requests[1].messages.size(), 1000u);
  EXPECT_EQ(plan.requests[2].messages.size(), 500u);
  EXPECT_EQ(BodyOf(plan.requests[2])["users"].size(), 500u);

  // Long user ids and a large payload (three times in the blocks): a publish stays under
  // Beams' 200 KiB.
  std::vector<PushMessage> wide;
  for (int i = 0; i < 1000; ++i) {
    std::string id = std::to_string(i);
    wide.push_back(Message(i, id + std::string(164 - id.size(), 'u')));
    wide.back().payload_json = R"({"note":")" + std::string(13000, 'n') + "\"}";
  }
  plan = Plan(*provider, wide);
  ASSERT_EQ(plan.requests.size(), 2u);
  for (const BatchRequest& request : plan.requests) {
    EXPECT_LE(request.request.body.size(), 200u * 1024) << request.messages.size();
  }
}

TEST(PusherBeamsProviderTest, PublishIdDeliversEveryMessage) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  std::vector<Outcome> out =
      Classify(*provider, 3, Reply(200, R"({"publishId":"pubid-33f3f68e"})"));
  ASSERT_EQ(out.size(), 3u);
  for (const Outcome& o : out) {
    EXPECT_EQ(o.verdict, Verdict::kDelivered);
    EXPECT_EQ(o.provider_message_id, "pubid-33f3f68e");
  }
}

TEST(PusherBeamsProviderTest, ErrorsMapByStatusAndTitle) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  struct Case {
    int status;
    const char* title;
    Verdict verdict;
  };
  for (const Case& c : {Case{400, "Invalid content type", Verdict::kFailed},
                        Case{400, "Bad request", Verdict::kFailed},
                        Case{400, "Incomplete Request", Verdict::kFailedConfig},
                        Case{401, "Unauthorized", Verdict::kFailedConfig},
                        Case{404, "Instance not found", Verdict::kFailedConfig},
                        Case{413, "Request Entity Too Large", Verdict::kFailed},
                        Case{422, "Unprocessable Entity", Verdict::kFailed},
                        Case{429, "Rate Limited", Verdict::kRetry},
                        Case{500, "Something went wrong", Verdict::kRetry},
                        Case{503, "Service Unavailable", Verdict::kRetry}}) {
    std::string body = std::string(R"({"error":")") + c.title + R"(","description":"why"})";
    std::vector<Outcome> out = Classify(*provider, 2, Reply(c.status, body));
    ASSERT_EQ(out.size(), 2u);
    for (const Outcome& o : out) {
      EXPECT_EQ(o.verdict, c.verdict) << c.status << " " << c.title;
      EXPECT_EQ(o.reason, "HTTP_" + std::to_string(c.status));
      EXPECT_NE(o.detail.find(c.title), std::string::npos) << o.detail;
      EXPECT_EQ(o.detail.find(kSecret), std::string::npos);
    }
  }
  std::vector<Outcome> limited =
      Classify(*provider, 1, Reply(429, R"({"error":"Rate Limited"})", {{"retry-after", "2"}}));
  ASSERT_TRUE(limited[0].retry_after.has_value());
  EXPECT_EQ(*limited[0].retry_after, std::chrono::seconds(2));
  EXPECT_EQ(Classify(*provider, 1, Reply(502, "<html>bad gateway"))[0].verdict, Verdict::kRetry);
  EXPECT_EQ(Classify(*provider, 1, Failure(http::TransportError::kConnect))[0].verdict,
            Verdict::kRetry);
  EXPECT_EQ(Classify(*provider, 1, Failure(http::TransportError::kTls))[0].verdict,
            Verdict::kFailedConfig);
}

TEST(PusherBeamsProviderTest, ProbePublishesToNobody) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  std::optional<http::Request> probe = ProbeRequest(*provider);
  ASSERT_TRUE(probe.has_value());
  EXPECT_EQ(probe->url, kUrl);
  EXPECT_EQ(HeaderOf(*probe, "Authorization"), std::string("Bearer ") + kSecret);
  Json body = Json::parse(probe->body);
  EXPECT_EQ(body["users"], Json::array());
  EXPECT_TRUE(body.contains("web"));

  EXPECT_TRUE(provider->ReadProbe(Reply(422, R"({"error":"Unprocessable Entity"})")).ok);
  ProbeResult wrong_key = provider->ReadProbe(
      Reply(401, R"({"error":"Unauthorized","description":"Incorrect API Key"})"));
  EXPECT_FALSE(wrong_key.ok);
  EXPECT_EQ(wrong_key.reason, "HTTP_401");
  EXPECT_NE(wrong_key.detail.find("Unauthorized"), std::string::npos);
  EXPECT_FALSE(provider->ReadProbe(Reply(404, R"({"error":"Instance not found"})")).ok);
  EXPECT_FALSE(provider->ReadProbe(Reply(400, R"({"error":"Incomplete Request"})")).ok);
  EXPECT_FALSE(provider->ReadProbe(Failure(http::TransportError::kDns)).ok);
}

TEST(PusherBeamsProviderTest, UserIdsAreAtMost164BytesOfUtf8) {
  const ProviderSpec* spec = FindProvider("pusher-beams");
  ASSERT_NE(spec, nullptr);
  EXPECT_TRUE(spec->NormalizeDeviceToken(std::string(164, 'u'), {}).ok());
  EXPECT_TRUE(spec->NormalizeDeviceToken("\xc3\xa9l\xc3\xa8ve-42", {}).ok());
  EXPECT_EQ(spec->NormalizeDeviceToken(std::string(165, 'u'), {}).status().message(),
            "device token (a Beams user id) must be at most 164 bytes");
  // 82 two-byte characters are 164 bytes; 83 are too many.
  std::string accents;
  for (int i = 0; i < 82; ++i) accents += "\xc3\xa9";
  EXPECT_TRUE(spec->NormalizeDeviceToken(accents, {}).ok());
  EXPECT_FALSE(spec->NormalizeDeviceToken(accents + "\xc3\xa9", {}).ok());
  EXPECT_FALSE(spec->NormalizeDeviceToken("", {}).ok());
  EXPECT_FALSE(spec->NormalizeDeviceToken("bad\xc3", {}).ok());
  EXPECT_FALSE(spec->NormalizeDeviceToken("two words", {}).ok());
}

}  // namespace
}  // namespace herald::providers
