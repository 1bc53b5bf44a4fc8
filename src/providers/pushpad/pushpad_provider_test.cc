// The Pushpad adapter against protocols.md §7: the create-notification request (documented
// wrapped body, Token auth), identical messages grouped (1,000 uids a request), the 201's uids
// mapped to per-message outcomes, the error statuses and the connection test.
#include "providers/pushpad/pushpad_provider.h"

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
using test::Classify;
using test::Failure;
using test::HeaderOf;
using test::Plan;
using test::ProbeRequest;
using test::Reply;
using test::SingleBody;

constexpr const char* kToken = "pushpad-auth-token-abcdef";

std::unique_ptr<Provider> Make(const Json& credentials = test::ValidCredentials("pushpad")) {
  return test::MakeProvider("pushpad", credentials);
}

Json WithBase(const char* base) {
  Json credentials = test::ValidCredentials("pushpad");
  credentials["baseUrl"] = base;
  return credentials;
}

PushMessage Message(int n, std::string uid = "") {
  return test::NumberedMessage(n, uid.empty() ? "uid" + std::to_string(n) : std::move(uid));
}

Json NotificationOf(const Provider& provider, const PushMessage& m) {
  return SingleBody(provider, m)["notification"];
}

TEST(PushpadProviderTest, CreatesANotificationForTheUids) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  EXPECT_EQ(provider->max_batch(), 1000u);
  BatchPlan plan = Plan(*provider, {Message(1), Message(2)});
  ASSERT_EQ(plan.requests.size(), 1u);
  const http::Request& request = plan.requests[0].request;
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.url, "https://pushpad.xyz/api/v1/projects/123/notifications");
  EXPECT_EQ(HeaderOf(request, "Authorization"), std::string("Token token=\"") + kToken + "\"");
  EXPECT_EQ(HeaderOf(request, "Content-Type"), "application/json");
  EXPECT_EQ(HeaderOf(request, "Accept"), "application/json");
  Json body = BodyOf(plan.requests[0]);
  EXPECT_EQ(body["uids"], Json::array({"uid1", "uid2"}));
  EXPECT_EQ(body["notification"], Json({{"body", "Your order shipped"}, {"title", "Hello Ann"}}));
  EXPECT_EQ(body.size(), 2u);
}

TEST(PushpadProviderTest, BaseUrlIsTheOriginOrTheSdksApiRoot) {
  for (const char* base : {"http://127.0.0.1:18446", "http://127.0.0.1:18446/",
                           "http://127.0.0.1:18446/api/v1", "http://127.0.0.1:18446/api/v1/"}) {
    auto provider = Make(WithBase(base));
    ASSERT_NE(provider, nullptr);
    EXPECT_EQ(Plan(*provider, {Message(1)}).requests[0].request.url,
              "http://127.0.0.1:18446/api/v1/projects/123/notifications")
        << base;
  }
  EXPECT_EQ(Plan(*Make(WithBase("https://proxy.example.com/pushpad")), {Message(1)})
                .requests[0]
                .request.url,
            "https://proxy.example.com/pushpad/api/v1/projects/123/notifications");
}

TEST(PushpadProviderTest, TheTokenIsAQuotedString) {
  Json credentials = test::ValidCredentials("pushpad");
  credentials["apiKey"] = R"(tok"en\x)";
  auto provider = Make(credentials);
  ASSERT_NE(provider, nullptr);
  EXPECT_EQ(HeaderOf(Plan(*provider, {Message(1)}).requests[0].request, "Authorization"),
            R"(Token token="tok\"en\\x")");
}

TEST(PushpadProviderTest, OverridesFillPushpadsFields) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  PushMessage m = Message(1);
  m.overrides = {
      {"url", "https://example.com/o/7"},
      {"icon", "https://example.com/i.png"},
      {"image", "https://example.com/big.png"},
      {"badge_url", "https://example.com/b.png"},
      {"ttl", 600},
      {"require_interaction", true},
      {"urgent", true},
      {"silent", false},
      {"starred", true},
      {"custom_data", "123"},
      {"actions", Json::array({{{"title", "Track"}, {"target_url", "https://e.com/t"}}})},
      {"custom_metrics", Json::array({"m1"})},
      {"uids", Json::array({"someone-else"})}};
  Json n = NotificationOf(*provider, m);
  EXPECT_EQ(n["target_url"], "https://example.com/o/7");
  EXPECT_EQ(n["icon_url"], "https://example.com/i.png");
  EXPECT_EQ(n["image_url"], "https://example.com/big.png");
  EXPECT_EQ(n["badge_url"], "https://example.com/b.png");
  EXPECT_EQ(n["ttl"], 600);
  EXPECT_EQ(n["require_interaction"], true);
  EXPECT_EQ(n["urgent"], true);
  EXPECT_EQ(n["silent"], false);
  EXPECT_EQ(n["starred"], true);
  EXPECT_EQ(n["custom_data"], "123");
  EXPECT_EQ(n["actions"][0]["title"], "Track");
  EXPECT_EQ(n["custom_metrics"], Json::array({"m1"}));
  EXPECT_FALSE(n.contains("uids"));
  // Pushpad's own names win over the short ones.
  m.overrides = {{"url", "https://a"}, {"target_url", "https://b"}};
  EXPECT_EQ(NotificationOf(*provider, m)["target_url"], "https://b");
  // No title: Pushpad shows the project's name.
  PushMessage untitled = Message(2);
  untitled.title.clear();
  EXPECT_FALSE(NotificationOf(*provider, untitled).contains("title"));
}

TEST(PushpadProviderTest, MessagesItCannotExpressAreRefused) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  PushMessage m = Message(1);
  m.content.clear();
  EXPECT_EQ(BatchRefusalReason(*provider, m), "MISSING_CONTENT");
  m = Message(1);
  for (Json overrides : {Json{{"ttl", "600"}}, Json{{"urgent", 1}}, Json{{"icon", 3}},
                         Json{{"actions", {{"title", "x"}}}}, Json{{"actions", Json::array({1})}},
                         Json{{"custom_metrics", {"a", "b", "c", "d"}}},
                         Json{{"send_at", "2030-01-01T00:00:00Z"}}}) {
    m.overrides = overrides;
    EXPECT_EQ(BatchRefusalReason(*provider, m), "INVALID_OVERRIDES") << overrides.dump();
  }
  m.overrides = {{"custom_data", std::string(40000, 'c')}};
  EXPECT_EQ(BatchRefusalReason(*provider, m), "MESSAGE_TOO_LARGE");
}

TEST(PushpadProviderTest, IdenticalMessagesShareANotification) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  std::vector<PushMessage> messages = {Message(1), Message(2), Message(3)};
  messages[1].overrides = {{"urgent", true}};
  BatchPlan plan = Plan(*provider, messages);
  ASSERT_EQ(plan.requests.size(), 2u);
  EXPECT_EQ(plan.requests[0].messages, (std::vector<std::size_t>{0, 2}));
  EXPECT_EQ(plan.requests[1].messages, (std::vector<std::size_t>{1}));

  std::vector<PushMessage> many;
  for (int i = 0; i < 2500; ++i) many.push_back(Message(i));
  plan = Plan(*provider, many);
  ASSERT_EQ(plan.requests.size(), 3u);
  EXPECT_EQ(BodyOf(plan.requests[0])["uids"].size(), 1000u);
  EXPECT_EQ(BodyOf(plan.requests[2])["uids"].size(), 500u);
}

TEST(PushpadProviderTest, ListedUidsAreDeliveredAndMissingOnesNotSubscribed) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  std::vector<PushMessage> messages = {Message(1), Message(2), Message(3)};
  std::vector<Outcome> out = Classify(
      *provider, messages, Reply(201, R"({"id":197123,"scheduled":5,"uids":["uid1","uid3"]})"));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].verdict, Verdict::kDelivered);
  EXPECT_EQ(out[0].provider_message_id, "197123");
  EXPECT_EQ(out[1].verdict, Verdict::kFailed);  // a user with no subscription: kept
  EXPECT_EQ(out[1].reason, "NOT_SUBSCRIBED");
  EXPECT_EQ(out[2].verdict, Verdict::kDelivered);

  // No uids in the reply (scheduled, or an older API): created, so delivered.
  for (const Outcome& o : Classify(*provider, messages, Reply(201, R"({"id":5})"))) {
    EXPECT_EQ(o.verdict, Verdict::kDelivered);
    EXPECT_EQ(o.provider_message_id, "5");
  }
  http::Outcome truncated = Reply(201, R"({"id":6,"uids":["uid1",)");
  truncated.response.body_truncated = true;
  for (const Outcome& o : Classify(*provider, messages, truncated)) {
    EXPECT_EQ(o.verdict, Verdict::kDelivered);
  }
}

TEST(PushpadProviderTest, ErrorStatusesMapToVerdicts) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  std::vector<PushMessage> messages = {Message(1), Message(2)};
  struct Case {
    int status;
    Verdict verdict;
  };
  for (const Case& c :
       {Case{400, Verdict::kFailed}, Case{401, Verdict::kFailedConfig},
        Case{402, Verdict::kFailedConfig}, Case{403, Verdict::kFailedConfig},
        Case{404, Verdict::kFailedConfig}, Case{422, Verdict::kFailed}, Case{429, Verdict::kRetry},
        Case{500, Verdict::kRetry}, Case{503, Verdict::kRetry}}) {
    std::vector<Outcome> out =
        Classify(*provider, messages, Reply(c.status, R"({"error":"nope"})"));
    ASSERT_EQ(out.size(), 2u);
    for (const Outcome& o : out) {
      EXPECT_EQ(o.verdict, c.verdict) << c.status;
      EXPECT_EQ(o.reason, "HTTP_" + std::to_string(c.status));
      EXPECT_NE(o.detail.find("nope"), std::string::npos);
      EXPECT_EQ(o.detail.find(kToken), std::string::npos);
    }
  }
  std::vector<Outcome> limited =
      Classify(*provider, messages, Reply(429, "", {{"retry-after", "3"}}));
  ASSERT_TRUE(limited[0].retry_after.has_value());
  EXPECT_EQ(*limited[0].retry_after, std::chrono::seconds(3));
  EXPECT_EQ(Classify(*provider, messages, Failure(http::TransportError::kTimeout))[0].verdict,
            Verdict::kRetry);
}

TEST(PushpadProviderTest, ProbeReadsTheProject) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  std::optional<http::Request> probe = ProbeRequest(*provider);
  ASSERT_TRUE(probe.has_value());
  EXPECT_EQ(probe->method, "GET");
  EXPECT_EQ(probe->url, "https://pushpad.xyz/api/v1/projects/123");
  EXPECT_EQ(HeaderOf(*probe, "Authorization"), std::string("Token token=\"") + kToken + "\"");
  EXPECT_TRUE(provider->ReadProbe(Reply(200, R"({"id":123,"name":"Demo"})")).ok);
  ProbeResult refused = provider->ReadProbe(Reply(401, R"({"error":"Unauthorized"})"));
  EXPECT_FALSE(refused.ok);
  EXPECT_EQ(refused.reason, "HTTP_401");
  EXPECT_FALSE(provider->ReadProbe(Reply(404, "")).ok);
  EXPECT_FALSE(provider->ReadProbe(Failure(http::TransportError::kConnect)).ok);
}

TEST(PushpadProviderTest, UidsAreRefusedWhenMalformed) {
  const ProviderSpec* spec = FindProvider("pushpad");
  ASSERT_NE(spec, nullptr);
  EXPECT_TRUE(spec->NormalizeDeviceToken("user-42", {}).ok());
  for (std::string_view bad :
       {std::string_view(""), std::string_view("a b"), std::string_view("\xfe\xff")}) {
    EXPECT_FALSE(spec->NormalizeDeviceToken(bad, {}).ok()) << bad;
  }
}

}  // namespace
}  // namespace herald::providers
