// The OneSignal adapter against protocols.md §5: both targeting models, Novu's body fields,
// identical messages grouped (2,000 ids a request), the idempotency key, per-id outcomes read
// from the reply's shape, the error statuses and the connection test.
#include "providers/one_signal/one_signal_provider.h"

#include <gtest/gtest.h>

#include <regex>
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
using test::Pointers;
using test::ProbeRequest;
using test::Reply;
using test::SingleBody;

constexpr const char* kAppId = "5eb5a37e-b458-11e3-ac11-000c2940e62c";
constexpr const char* kKey = "os_v2_app_secretsecretsecret";

Json Credentials(const char* version = nullptr) {
  Json credentials = test::ValidCredentials("one-signal");
  if (version) credentials["apiVersion"] = version;
  return credentials;
}

std::unique_ptr<Provider> Make(const Json& credentials = Credentials()) {
  return test::MakeProvider("one-signal", credentials);
}

PushMessage Message(int n, std::string token = "") {
  return test::NumberedMessage(n, token.empty() ? "player-" + std::to_string(n) : std::move(token));
}

using Batch = std::vector<PushMessage>;

Batch Three() { return {Message(1), Message(2), Message(3)}; }

// ---- requests --------------------------------------------------------------------------------

TEST(OneSignalProviderTest, PlayerModelIsTheLegacyEndpointWithBasicAuth) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  EXPECT_EQ(provider->max_batch(), 2000u);
  EXPECT_EQ(provider->auth(), nullptr);
  BatchPlan plan = Plan(*provider, Three());
  ASSERT_EQ(plan.requests.size(), 1u);
  const http::Request& request = plan.requests[0].request;
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.url, "https://onesignal.com/api/v1/notifications");
  int count = 0;
  EXPECT_EQ(HeaderOf(request, "Authorization", &count), std::string("Basic ") + kKey);
  EXPECT_EQ(count, 1);
  EXPECT_EQ(HeaderOf(request, "Content-Type"), "application/json");
  EXPECT_EQ(HeaderOf(request, "Accept"), "application/json");
  Json body = BodyOf(plan.requests[0]);
  EXPECT_EQ(body["app_id"], kAppId);
  EXPECT_EQ(body["include_player_ids"], Json::array({"player-1", "player-2", "player-3"}));
  EXPECT_FALSE(body.contains("include_aliases"));
  EXPECT_FALSE(body.contains("target_channel"));
  EXPECT_EQ(plan.requests[0].messages, (std::vector<std::size_t>{0, 1, 2}));
  // app_id and the targets lead, the idempotency key ends the body.
  EXPECT_EQ(
      request.body.rfind(std::string("{\"app_id\":\"") + kAppId + "\",\"include_player_ids\"", 0),
      0u);
  EXPECT_NE(request.body.find("\"idempotency_key\":"), std::string::npos);
  EXPECT_EQ(request.body.back(), '}');
}

TEST(OneSignalProviderTest, ExternalIdIsTheCurrentEndpointWithKeyAuthAndAliases) {
  auto provider = Make(Credentials("externalId"));
  ASSERT_NE(provider, nullptr);
  BatchPlan plan = Plan(*provider, Three());
  ASSERT_EQ(plan.requests.size(), 1u);
  const http::Request& request = plan.requests[0].request;
  EXPECT_EQ(request.url, "https://api.onesignal.com/notifications");
  EXPECT_EQ(HeaderOf(request, "Authorization"), std::string("Key ") + kKey);
  Json body = BodyOf(plan.requests[0]);
  EXPECT_EQ(body["include_aliases"], Json({{"external_id", {"player-1", "player-2", "player-3"}}}));
  EXPECT_EQ(body["target_channel"], "push");
  EXPECT_FALSE(body.contains("include_player_ids"));
  // "playerModel" spelled out is the default.
  auto legacy = Make(Credentials("playerModel"));
  ASSERT_NE(legacy, nullptr);
  EXPECT_EQ(Plan(*legacy, Three()).requests[0].request.url,
            "https://onesignal.com/api/v1/notifications");
}

TEST(OneSignalProviderTest, BaseUrlReplacesTheOrigin) {
  Json credentials = Credentials();
  credentials["baseUrl"] = "http://127.0.0.1:18446/";
  EXPECT_EQ(Plan(*Make(credentials), Three()).requests[0].request.url,
            "http://127.0.0.1:18446/api/v1/notifications");
  credentials["apiVersion"] = "externalId";
  EXPECT_EQ(Plan(*Make(credentials), Three()).requests[0].request.url,
            "http://127.0.0.1:18446/notifications");
}

TEST(OneSignalProviderTest, BodyHasNovusFields) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  Json body = SingleBody(*provider, Message(1));
  EXPECT_EQ(body["headings"], Json({{"en", "Hello Ann"}}));
  EXPECT_EQ(body["contents"], Json({{"en", "Your order shipped"}}));
  EXPECT_EQ(body["data"], Json({{"orderId", 7}}));  // the device payload: no subscriber, no step
  EXPECT_EQ(body["ios_badgeType"], "Increase");
  EXPECT_EQ(body["ios_badgeCount"], 1);
  for (const char* absent : {"subtitle", "ios_sound", "android_sound", "mutable_content",
                             "android_channel_id", "small_icon", "ios_category"}) {
    EXPECT_FALSE(body.contains(absent)) << absent;
  }

  PushMessage m = Message(2);
  m.overrides = {{"subtitle", "Sub"},
                 {"sound", "ping.wav"},
                 {"badge", 4},
                 {"mutableContent", true},
                 {"channelId", "orders"},
                 {"icon", "ic_stat"},
                 {"categoryId", "ORDER"},
                 {"data", {{"extra", "x"}}},
                 {"url", "https://example.com/o/7"},
                 {"ttl", 600},
                 {"priority", 10},
                 {"collapse_id", "order-7"},
                 {"app_id", "not-taken"},
                 {"include_player_ids", {"x"}}};
  body = SingleBody(*provider, m);
  EXPECT_EQ(body["subtitle"], Json({{"en", "Sub"}}));
  EXPECT_EQ(body["ios_sound"], "ping.wav");
  EXPECT_EQ(body["android_sound"], "ping.wav");
  EXPECT_EQ(body["ios_badgeType"], "SetTo");
  EXPECT_EQ(body["ios_badgeCount"], 4);
  EXPECT_EQ(body["mutable_content"], true);
  EXPECT_EQ(body["android_channel_id"], "orders");
  for (const char* key : {"small_icon", "large_icon", "chrome_web_icon", "firefox_icon"}) {
    EXPECT_EQ(body[key], "ic_stat") << key;
  }
  EXPECT_EQ(body["ios_category"], "ORDER");
  EXPECT_EQ(body["data"], Json({{"orderId", 7}, {"extra", "x"}}));
  EXPECT_EQ(body["url"], "https://example.com/o/7");
  EXPECT_EQ(body["ttl"], 600);
  EXPECT_EQ(body["priority"], 10);
  EXPECT_EQ(body["collapse_id"], "order-7");
  // Overrides never retarget: app id and targets are Herald's.
  EXPECT_EQ(body["app_id"], kAppId);
  EXPECT_EQ(body["include_player_ids"], Json::array({"player-2"}));

  PushMessage untitled = Message(3);
  untitled.title.clear();
  untitled.payload_json = R"({"subscriber":{}})";
  body = SingleBody(*provider, untitled);
  EXPECT_FALSE(body.contains("headings"));
  EXPECT_FALSE(body.contains("data"));
}

TEST(OneSignalProviderTest, MessagesItCannotExpressAreRefusedAlone) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  PushMessage m = Message(1);
  m.overrides = {{"sound", 5}};
  EXPECT_EQ(BatchRefusalReason(*provider, m), "INVALID_OVERRIDES");
  m.overrides = {{"badge", -1}};
  EXPECT_EQ(BatchRefusalReason(*provider, m), "INVALID_OVERRIDES");
  m.overrides = {{"mutableContent", "yes"}};
  EXPECT_EQ(BatchRefusalReason(*provider, m), "INVALID_OVERRIDES");
  m.overrides = {{"data", {{"big", std::string(3000, 'x')}}}};
  EXPECT_EQ(BatchRefusalReason(*provider, m), "PAYLOAD_TOO_LARGE");
  m.overrides = {{"buttons", Json::array({{{"id", std::string(40000, 'b')}}})}};
  EXPECT_EQ(BatchRefusalReason(*provider, m), "MESSAGE_TOO_LARGE");
  m.overrides = Json::object();
  m.content.clear();
  EXPECT_EQ(BatchRefusalReason(*provider, m), "MISSING_CONTENT");
  m.overrides = {{"content_available", true}};  // a background push needs no text
  EXPECT_FALSE(SingleBody(*provider, m).contains("contents"));

  // One refused message does not hold back the others.
  PushMessage bad = Message(2);
  bad.overrides = {{"icon", Json::array()}};
  Batch batch{Message(1), bad, Message(3)};
  BatchPlan plan = Plan(*provider, batch);
  ASSERT_EQ(plan.refused.size(), 1u);
  EXPECT_EQ(plan.refused[0].first, 1u);
  EXPECT_EQ(plan.refused[0].second.detail, "overrides.icon must be a string");
  ASSERT_EQ(plan.requests.size(), 1u);
  EXPECT_EQ(plan.requests[0].messages, (std::vector<std::size_t>{0, 2}));
}

// ---- grouping and the idempotency key --------------------------------------------------------

TEST(OneSignalProviderTest, IdenticalMessagesShareARequestAndOthersDoNot) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  Batch batch{Message(1), Message(2), Message(3), Message(4), Message(5)};
  batch[1].title = "Hello Bob";
  batch[3].overrides = {{"sound", "x"}};
  batch[4].payload_json = R"({"orderId":7,"subscriber":{"subscriberId":"other"}})";
  BatchPlan plan = Plan(*provider, batch);
  ASSERT_EQ(plan.requests.size(), 3u);
  // Another subscriber's copy of the payload is the same push: grouped.
  EXPECT_EQ(plan.requests[0].messages, (std::vector<std::size_t>{0, 2, 4}));
  EXPECT_EQ(plan.requests[1].messages, (std::vector<std::size_t>{1}));
  EXPECT_EQ(plan.requests[2].messages, (std::vector<std::size_t>{3}));
  EXPECT_EQ(BodyOf(plan.requests[1])["headings"]["en"], "Hello Bob");

  // The same device twice (two triggers): never twice in one request.
  Batch twice{Message(1, "same"), Message(2, "same")};
  EXPECT_EQ(Plan(*provider, twice).requests.size(), 2u);
}

TEST(OneSignalProviderTest, TwoThousandFiveHundredTokensAreTwoRequests) {
  auto provider = Make(Credentials("externalId"));
  ASSERT_NE(provider, nullptr);
  Batch batch;
  for (int i = 0; i < 2500; ++i) batch.push_back(Message(i));
  BatchPlan plan = Plan(*provider, batch);
  ASSERT_EQ(plan.requests.size(), 2u);
  EXPECT_EQ(plan.requests[0].messages.size(), 2000u);
  EXPECT_EQ(plan.requests[1].messages.size(), 500u);
  EXPECT_EQ(BodyOf(plan.requests[0])["include_aliases"]["external_id"].size(), 2000u);
  EXPECT_EQ(plan.requests[1].messages.front(), 2000u);
  EXPECT_NE(BodyOf(plan.requests[0])["idempotency_key"],
            BodyOf(plan.requests[1])["idempotency_key"]);
}

TEST(OneSignalProviderTest, IdempotencyKeyIsAUuidStableForTheSameMessages) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  Batch batch = Three();
  const std::string key = BodyOf(Plan(*provider, batch).requests[0])["idempotency_key"];
  EXPECT_TRUE(std::regex_match(
      key, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
      << key;
  // The same messages, built again or in another order, carry the same key.
  EXPECT_EQ(BodyOf(Plan(*provider, batch).requests[0])["idempotency_key"], key);
  Batch reversed{batch[2], batch[0], batch[1]};
  EXPECT_EQ(BodyOf(Plan(*provider, reversed).requests[0])["idempotency_key"], key);
  auto pointers = Pointers(batch);
  EXPECT_EQ(OneSignalIdempotencyKey(pointers), key);
  // Other messages (a regrouped retry) carry another.
  Batch fewer{batch[0], batch[1]};
  EXPECT_NE(BodyOf(Plan(*provider, fewer).requests[0])["idempotency_key"], key);
}

// ---- replies ---------------------------------------------------------------------------------

TEST(OneSignalProviderTest, InvalidIdsAreRemovedAndTheOthersDelivered) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  std::vector<Outcome> out =
      Classify(*provider, Three(),
               Reply(200, R"({"id":"b98881cc-1e94-4366-bbd9-db8f3429292b","external_id":null,)"
                          R"("errors":{"invalid_player_ids":["player-2"]}})"));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].verdict, Verdict::kDelivered);
  EXPECT_EQ(out[0].provider_message_id, "b98881cc-1e94-4366-bbd9-db8f3429292b");
  EXPECT_EQ(out[1].verdict, Verdict::kFailedRemoveToken);
  EXPECT_EQ(out[1].reason, "INVALID_PLAYER_ID");
  EXPECT_FALSE(out[1].unsubscribed);
  EXPECT_EQ(out[2].verdict, Verdict::kDelivered);

  out =
      Classify(*provider, Three(),
               Reply(200, R"({"id":"n1","errors":{"invalid_aliases":{"external_id":["player-1"]},)"
                          R"("invalid_external_user_ids":["player-3"]}})"));
  EXPECT_EQ(out[0].verdict, Verdict::kFailedRemoveToken);
  EXPECT_EQ(out[0].reason, "INVALID_EXTERNAL_ID");
  EXPECT_EQ(out[1].verdict, Verdict::kDelivered);
  EXPECT_EQ(out[2].verdict, Verdict::kFailedRemoveToken);

  // Warnings that list no ids change nothing.
  out = Classify(*provider, Three(), Reply(200, R"({"id":"n2","errors":["something"]})"));
  for (const Outcome& o : out) EXPECT_EQ(o.verdict, Verdict::kDelivered);
}

TEST(OneSignalProviderTest, NothingSentToUnsubscribedIdsRemovesThemAll) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  // Classified by shape: an empty id with an array of errors, whatever its text.
  for (const char* text : {"All included players are not subscribed", "anything else"}) {
    std::vector<Outcome> out = Classify(
        *provider, Three(), Reply(200, std::string(R"({"id":"","errors":[")") + text + "\"]}"));
    for (const Outcome& o : out) {
      EXPECT_EQ(o.verdict, Verdict::kFailedRemoveToken);
      EXPECT_EQ(o.reason, "NOT_SUBSCRIBED");
      EXPECT_TRUE(o.unsubscribed);
    }
  }
  // An empty id with ids listed: those removed, the others failed and kept.
  std::vector<Outcome> out = Classify(
      *provider, Three(), Reply(200, R"({"id":"","errors":{"invalid_player_ids":["player-1"]}})"));
  EXPECT_EQ(out[0].verdict, Verdict::kFailedRemoveToken);
  EXPECT_EQ(out[1].verdict, Verdict::kFailed);
  EXPECT_EQ(out[1].reason, "NOT_SENT");
}

TEST(OneSignalProviderTest, ErrorStatusesMapToVerdicts) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  struct Case {
    int status;
    Verdict verdict;
  };
  for (const Case& c :
       {Case{400, Verdict::kFailed}, Case{401, Verdict::kFailedConfig},
        Case{403, Verdict::kFailedConfig}, Case{404, Verdict::kFailed}, Case{429, Verdict::kRetry},
        Case{500, Verdict::kRetry}, Case{503, Verdict::kRetry}}) {
    std::vector<Outcome> out =
        Classify(*provider, Three(), Reply(c.status, R"({"errors":["Some problem."]})"));
    ASSERT_EQ(out.size(), 3u);
    for (const Outcome& o : out) {
      EXPECT_EQ(o.verdict, c.verdict) << c.status;
      EXPECT_EQ(o.reason, "HTTP_" + std::to_string(c.status));
      EXPECT_NE(o.detail.find("Some problem."), std::string::npos) << o.detail;
      EXPECT_EQ(o.detail.find(kKey), std::string::npos);
    }
  }
  std::vector<Outcome> limited =
      Classify(*provider, Three(),
               Reply(429, R"({"errors":["API rate limit exceeded."]})", {{"retry-after", "7"}}));
  ASSERT_TRUE(limited[0].retry_after.has_value());
  EXPECT_EQ(*limited[0].retry_after, std::chrono::seconds(7));

  for (const Outcome& o : Classify(*provider, Three(), Failure(http::TransportError::kTimeout))) {
    EXPECT_EQ(o.verdict, Verdict::kRetry);
    EXPECT_EQ(o.reason, "TIMEOUT");
  }
  // A 200 that cannot be read is sent again: the same idempotency key makes that safe.
  for (const Outcome& o : Classify(*provider, Three(), Reply(200, "<html>"))) {
    EXPECT_EQ(o.verdict, Verdict::kRetry);
    EXPECT_EQ(o.reason, "UNREADABLE_REPLY");
  }
  // A 200 too large to keep was still taken.
  http::Outcome truncated = Reply(200, R"({"id":"n3","errors":{"invalid_player_ids":["pla)");
  truncated.response.body_truncated = true;
  for (const Outcome& o : Classify(*provider, Three(), truncated)) {
    EXPECT_EQ(o.verdict, Verdict::kDelivered);
  }
}

// ---- connection test and tokens --------------------------------------------------------------

TEST(OneSignalProviderTest, ProbeListsOneNotificationOfTheApp) {
  for (const char* version : {"playerModel", "externalId"}) {
    auto provider = Make(Credentials(version));
    ASSERT_NE(provider, nullptr);
    EXPECT_FALSE(provider->probe_uses_token());
    std::optional<http::Request> probe = ProbeRequest(*provider);
    ASSERT_TRUE(probe.has_value());
    const http::Request& request = *probe;
    EXPECT_EQ(request.method, "GET");
    EXPECT_TRUE(request.body.empty());
    const bool external = std::string(version) == "externalId";
    EXPECT_EQ(request.url, std::string(external ? "https://api.onesignal.com/notifications"
                                                : "https://onesignal.com/api/v1/notifications") +
                               "?app_id=" + kAppId + "&limit=1");
    EXPECT_EQ(HeaderOf(request, "Authorization"), std::string(external ? "Key " : "Basic ") + kKey);

    EXPECT_TRUE(provider->ReadProbe(Reply(200, R"({"total_count":0,"notifications":[]})")).ok);
    ProbeResult refused = provider->ReadProbe(Reply(403, R"({"errors":["Access denied."]})"));
    EXPECT_FALSE(refused.ok);
    EXPECT_EQ(refused.reason, "HTTP_403");
    EXPECT_FALSE(provider->ReadProbe(Reply(400, "{}")).ok);
    ProbeResult down = provider->ReadProbe(Failure(http::TransportError::kConnect));
    EXPECT_FALSE(down.ok);
    EXPECT_EQ(down.reason, "CONNECT");
  }
}

TEST(OneSignalProviderTest, TokensAreRefusedWhenMalformed) {
  const ProviderSpec* spec = FindProvider("one-signal");
  ASSERT_NE(spec, nullptr);
  EXPECT_TRUE(spec->NormalizeDeviceToken("1dd608f2-c6a1-11e3-851d-000c2940e62c", {}).ok());
  EXPECT_TRUE(spec->NormalizeDeviceToken("user-\xc3\xa9", {}).ok());
  for (std::string_view bad : {std::string_view(""), std::string_view("has space"),
                               std::string_view("bad\xff"), std::string_view("a\nb")}) {
    EXPECT_FALSE(spec->NormalizeDeviceToken(bad, {}).ok()) << bad;
  }
}

}  // namespace
}  // namespace herald::providers
