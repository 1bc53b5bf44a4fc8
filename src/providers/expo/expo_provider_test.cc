// The Expo Push Service adapter against protocols.md §4: the batched send request (gzip above
// 1 KiB), tickets and their errors, request-level errors, receipts, and the connection test.
#include "providers/expo/expo_provider.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <array>
#include <string>
#include <vector>

#include "providers/provider_test_util.h"
#include "providers/registry.h"
#include "providers/spec_test_util.h"

namespace herald::providers {
namespace {

using namespace std::chrono_literals;
using test::Failure;
using test::HeaderOf;
using test::Pointers;
using test::ProbeRequest;
using test::Reply;

constexpr const char* kSendUrl = "https://exp.host/--/api/v2/push/send";
constexpr const char* kReceiptsUrl = "https://exp.host/--/api/v2/push/getReceipts";
constexpr const char* kAccessToken = "expo-access-token-0123456789";

std::unique_ptr<Provider> Make(const Json& credentials = test::ValidCredentials("expo")) {
  return test::MakeProvider("expo", credentials);
}

std::string Token(int n) { return "ExponentPushToken[tok-" + std::to_string(n) + "]"; }

PushMessage Message(int n = 1) {
  return test::NumberedMessage(
      n, Token(n),
      R"({"orderId":7,"nested":{"a":[1,2]},"subscriber":{"subscriberId":"s1"},"step":{"digest":false}})");
}

// zlib's gzip, decoded here independently of the provider's code path.
std::string Gunzip(const std::string& data) {
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  std::string out;
  std::array<char, 4096> chunk;
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(chunk.data());
    z.avail_out = static_cast<uInt>(chunk.size());
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(chunk.data(), chunk.size() - z.avail_out);
    if (rc == Z_OK && z.avail_in == 0 && z.avail_out != 0) break;
  }
  inflateEnd(&z);
  EXPECT_EQ(rc, Z_STREAM_END);
  return out;
}

std::string GzipOf(const std::string& text) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, static_cast<uLong>(text.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// The one request a batch makes, and its body as JSON (gunzipped when it says so).
struct Built {
  BatchPlan plan;
  Json body;
};
Built Build(const Provider& provider, const std::vector<PushMessage>& messages) {
  Built built;
  std::vector<const PushMessage*> batch = Pointers(messages);
  built.plan = provider.BuildBatch(batch, {});
  if (built.plan.requests.size() != 1) {
    ADD_FAILURE() << built.plan.requests.size() << " requests";
    return built;
  }
  const http::Request& request = built.plan.requests[0].request;
  std::string text =
      HeaderOf(request, "content-encoding") == "gzip" ? Gunzip(request.body) : request.body;
  built.body = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  return built;
}

// What Expo answers for a send: {"data": tickets}.
std::string Tickets(Json tickets) { return DumpJson(Json{{"data", std::move(tickets)}}); }
Json OkTicket(const std::string& id) { return {{"status", "ok"}, {"id", id}}; }
Json ErrorTicket(const char* code) {
  return {{"status", "error"},
          {"message", "\"ExponentPushToken[x]\" is not a registered push notification recipient"},
          {"details", {{"error", code}}}};
}
std::string RequestError(const char* code, Json details = nullptr) {
  Json error = {{"code", code}, {"message", "refused"}};
  if (!details.is_null()) error["details"] = std::move(details);
  return DumpJson(Json{{"errors", Json::array({error})}});
}

std::vector<Outcome> Classify(const Provider& provider, const http::Outcome& reply, int n) {
  std::vector<PushMessage> messages;
  for (int i = 0; i < n; ++i) messages.push_back(Message(i));
  return test::Classify(provider, messages, reply);
}

// ---- the send request --------------------------------------------------------------------------

TEST(ExpoProviderTest, SendsOneJsonArrayWithExposHeaders) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  EXPECT_EQ(provider->auth(), nullptr);  // a static Bearer header
  EXPECT_FALSE(provider->probe_uses_token());
  EXPECT_EQ(provider->max_batch(), 100u);
  Built built = Build(*provider, {Message(1)});
  ASSERT_EQ(built.plan.requests.size(), 1u);
  EXPECT_TRUE(built.plan.refused.empty());
  const http::Request& request = built.plan.requests[0].request;
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.url, kSendUrl);
  EXPECT_EQ(HeaderOf(request, "Content-Type"), "application/json");
  EXPECT_EQ(HeaderOf(request, "Accept"), "application/json");
  EXPECT_EQ(HeaderOf(request, "Accept-Encoding"), "gzip, deflate");
  EXPECT_EQ(HeaderOf(request, "Authorization"), std::string("Bearer ") + kAccessToken);
  int encodings = 0;
  HeaderOf(request, "Content-Encoding", &encodings);
  EXPECT_EQ(encodings, 0) << "small bodies go as they are";
  EXPECT_EQ(built.plan.requests[0].messages, std::vector<std::size_t>{0});
  // Novu's shape: the payload as data, without the subscriber and step Herald adds to it.
  EXPECT_EQ(request.body,
            R"([{"to":"ExponentPushToken[tok-1]","title":"Hello Ann","body":"Your order shipped",)"
            R"("data":{"orderId":7,"nested":{"a":[1,2]}}}])");
}

TEST(ExpoProviderTest, AccessTokenIsOptionalAndTheOriginConfigurable) {
  auto provider = Make({{"baseUrl", "http://127.0.0.1:9000/"}});
  ASSERT_NE(provider, nullptr);
  Built built = Build(*provider, {Message(1)});
  ASSERT_EQ(built.plan.requests.size(), 1u);
  int count = 0;
  HeaderOf(built.plan.requests[0].request, "Authorization", &count);
  EXPECT_EQ(count, 0);
  EXPECT_EQ(built.plan.requests[0].request.url, "http://127.0.0.1:9000/--/api/v2/push/send");
  Result<http::Request> check = provider->receipts()->BuildCheck(std::vector<std::string>{"r"}, {});
  ASSERT_TRUE(check.ok());
  EXPECT_EQ(check->url, "http://127.0.0.1:9000/--/api/v2/push/getReceipts");
}

TEST(ExpoProviderTest, OverridesAsNovuSpreadsThem) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  PushMessage m = Message(1);
  m.overrides = {{"sound", "default"},
                 {"badge", 3},
                 {"data", {{"orderId", 8}, {"extra", "x"}}},
                 {"channelId", "orders"},
                 {"priority", "high"},
                 {"ttl", 60},
                 {"subtitle", "Sub"},
                 {"mutableContent", true},
                 {"richContent", {{"image", "https://example.com/a.png"}}},
                 {"someFutureField", {1, 2}},
                 {"title", "Overridden"},
                 {"deviceTokens", {"ExponentPushToken[other]"}},
                 {"to", "ExponentPushToken[other]"},
                 {"icon", nullptr}};
  Built built = Build(*provider, {m});
  ASSERT_TRUE(built.body.is_array());
  const Json& got = built.body[0];
  EXPECT_EQ(got["to"], "ExponentPushToken[tok-1]") << "the recipient is the message's token";
  EXPECT_EQ(got["title"], "Overridden");
  EXPECT_EQ(got["body"], "Your order shipped");
  EXPECT_EQ(got["sound"], "default");
  EXPECT_EQ(got["badge"], 3);
  EXPECT_EQ(got["data"], (Json{{"orderId", 8}, {"nested", {{"a", {1, 2}}}}, {"extra", "x"}}));
  EXPECT_EQ(got["channelId"], "orders");
  EXPECT_EQ(got["priority"], "high");
  EXPECT_EQ(got["ttl"], 60);
  EXPECT_EQ(got["subtitle"], "Sub");
  EXPECT_EQ(got["mutableContent"], true);
  EXPECT_EQ(got["richContent"]["image"], "https://example.com/a.png");
  EXPECT_EQ(got["someFutureField"], Json({1, 2}));
  EXPECT_FALSE(got.contains("deviceTokens"));
  EXPECT_FALSE(got.contains("icon"));

  // A sound that is not a string is dropped (Novu sends null), except Expo's critical-sound object.
  m.overrides = {{"sound", 5}};
  EXPECT_FALSE(Build(*provider, {m}).body[0].contains("sound"));
  m.overrides = {{"sound", {{"critical", true}, {"name", "default"}, {"volume", 1}}}};
  EXPECT_EQ(Build(*provider, {m}).body[0]["sound"]["critical"], true);

  // No title, body or payload: none is sent (a data-less background message stays small).
  PushMessage bare;
  bare.device_token = Token(2);
  EXPECT_EQ(Build(*provider, {bare}).body, Json::parse(R"([{"to":"ExponentPushToken[tok-2]"}])"));
}

// One message Expo would refuse must not sink the batch: it is refused here, the rest go.
TEST(ExpoProviderTest, MessagesExpoWouldRefuseStayOutOfTheBatch) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  struct Case {
    Json overrides;
    const char* detail;
  };
  for (const Case& c : {
           Case{{{"badge", "3"}}, "overrides.badge must be a number, not negative"},
           Case{{{"badge", -1}}, "overrides.badge must be a number, not negative"},
           Case{{{"data", "x"}}, "overrides.data must be an object"},
           Case{{{"priority", "urgent"}}, "overrides.priority must be default, normal or high"},
           Case{{{"ttl", -5}}, "overrides.ttl must be a number of seconds, not negative"},
           Case{{{"channelId", 5}}, "overrides.channelId must be a string"},
           Case{{{"mutableContent", 1}}, "overrides.mutableContent must be a boolean"},
           Case{{{"richContent", "x"}}, "overrides.richContent must be an object"},
           Case{{{"interruptionLevel", "loud"}},
                "overrides.interruptionLevel must be active, critical, passive or time-sensitive"},
       }) {
    std::vector<PushMessage> messages = {Message(0), Message(1), Message(2)};
    messages[1].overrides = c.overrides;
    Built built = Build(*provider, messages);
    ASSERT_EQ(built.plan.refused.size(), 1u) << c.detail;
    EXPECT_EQ(built.plan.refused[0].first, 1u);
    EXPECT_EQ(built.plan.refused[0].second.verdict, Verdict::kFailed);
    EXPECT_EQ(built.plan.refused[0].second.reason, "INVALID_OVERRIDES");
    EXPECT_EQ(built.plan.refused[0].second.detail, c.detail);
    EXPECT_EQ(built.plan.requests[0].messages, (std::vector<std::size_t>{0, 2}));
    ASSERT_EQ(built.body.size(), 2u);
    EXPECT_EQ(built.body[1]["to"], Token(2));
  }

  // A token that is not Expo's (given in a trigger's overrides, or stored before tokens were
  // checked) is dead for Expo.
  std::vector<PushMessage> messages = {Message(0), Message(1)};
  messages[0].device_token = "not-an-expo-token";
  Built built = Build(*provider, messages);
  ASSERT_EQ(built.plan.refused.size(), 1u);
  EXPECT_EQ(built.plan.refused[0].second.verdict, Verdict::kFailedRemoveToken);
  EXPECT_EQ(built.plan.refused[0].second.reason, "INVALID_TOKEN");
  EXPECT_EQ(built.plan.requests[0].messages, std::vector<std::size_t>{1});

  // Nothing left to send: no request.
  messages = {Message(0)};
  messages[0].device_token = "x";
  std::vector<const PushMessage*> batch = Pointers(messages);
  BatchPlan none = provider->BuildBatch(batch, {});
  EXPECT_TRUE(none.requests.empty());
  EXPECT_EQ(none.refused.size(), 1u);
}

TEST(ExpoProviderTest, BodiesOverOneKibibyteGoGzipped) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  std::vector<PushMessage> messages;
  for (int i = 0; i < 20; ++i) messages.push_back(Message(i));
  std::vector<const PushMessage*> batch = Pointers(messages);
  BatchPlan plan = provider->BuildBatch(batch, {});
  ASSERT_EQ(plan.requests.size(), 1u);
  const http::Request& request = plan.requests[0].request;
  EXPECT_EQ(HeaderOf(request, "Content-Encoding"), "gzip");
  const std::string text = Gunzip(request.body);
  EXPECT_GT(text.size(), 1024u);
  EXPECT_LT(request.body.size(), text.size());
  Json body = Json::parse(text);
  ASSERT_EQ(body.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(body[i]["to"], Token(i));

  // Receipt checks too: a thousand ids.
  std::vector<std::string> receipts;
  for (int i = 0; i < 1000; ++i) receipts.push_back("receipt-" + std::to_string(i));
  Result<http::Request> check = provider->receipts()->BuildCheck(receipts, {});
  ASSERT_TRUE(check.ok());
  EXPECT_EQ(HeaderOf(*check, "Content-Encoding"), "gzip");
  EXPECT_EQ(Json::parse(Gunzip(check->body))["ids"].size(), 1000u);
}

// The dispatcher hands a provider at most max_batch() messages at a time: 250 messages make
// requests of 100, 100 and 50, each one Expo array.
TEST(ExpoProviderTest, TwoHundredFiftyMessagesMakeThreeRequests) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  std::vector<PushMessage> messages;
  for (int i = 0; i < 250; ++i) messages.push_back(Message(i));
  std::vector<const PushMessage*> all = Pointers(messages);
  std::vector<std::size_t> sizes;
  std::vector<std::string> tokens;
  for (std::size_t start = 0; start < all.size(); start += provider->max_batch()) {
    std::size_t n = std::min(provider->max_batch(), all.size() - start);
    BatchPlan plan = provider->BuildBatch(std::span(all).subspan(start, n), {});
    ASSERT_EQ(plan.requests.size(), 1u);
    Json body = Json::parse(Gunzip(plan.requests[0].request.body));
    sizes.push_back(body.size());
    for (const Json& m : body) tokens.push_back(m["to"]);
  }
  EXPECT_EQ(sizes, (std::vector<std::size_t>{100, 100, 50}));
  ASSERT_EQ(tokens.size(), 250u);
  for (int i = 0; i < 250; ++i) EXPECT_EQ(tokens[i], Token(i));
}

// ---- tickets -----------------------------------------------------------------------------------

TEST(ExpoProviderTest, TicketsInOrder) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  std::vector<Outcome> out = Classify(
      *provider,
      Reply(200, Tickets({OkTicket("r-0"), ErrorTicket("DeviceNotRegistered"), OkTicket("r-2")})),
      3);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].verdict, Verdict::kAccepted);
  EXPECT_EQ(out[0].receipt, "r-0");
  EXPECT_EQ(out[0].provider_message_id, "r-0");
  EXPECT_EQ(out[1].verdict, Verdict::kFailedRemoveToken);
  EXPECT_TRUE(out[1].unsubscribed);
  EXPECT_EQ(out[1].reason, "DeviceNotRegistered");
  EXPECT_EQ(out[1].detail,
            "Expo ticket error DeviceNotRegistered: \"ExponentPushToken[x]\" is not a registered "
            "push notification recipient");
  EXPECT_EQ(out[2].receipt, "r-2");
  // An ok ticket without an id has nothing to confirm later.
  EXPECT_EQ(Classify(*provider, Reply(200, Tickets({{{"status", "ok"}}})), 1)[0].verdict,
            Verdict::kDelivered);
}

// Every `details.error` Expo documents, typed (the message text is never read).
TEST(ExpoProviderTest, TicketAndReceiptErrorsByType) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  struct Case {
    const char* code;
    Verdict verdict;
  };
  for (const Case& c :
       {Case{"DeviceNotRegistered", Verdict::kFailedRemoveToken},
        Case{"MessageRateExceeded", Verdict::kRetry},
        Case{"InvalidCredentials", Verdict::kFailedConfig},
        Case{"MismatchSenderId", Verdict::kFailedConfig}, Case{"MessageTooBig", Verdict::kFailed},
        Case{"DeveloperError", Verdict::kFailed}, Case{"ProviderError", Verdict::kRetry},
        Case{"ExpoError", Verdict::kRetry}, Case{"SomethingNew", Verdict::kFailed}}) {
    Outcome ticket = Classify(*provider, Reply(200, Tickets({ErrorTicket(c.code)})), 1).at(0);
    EXPECT_EQ(ticket.verdict, c.verdict) << c.code;
    EXPECT_EQ(ticket.reason, c.code);
    Json receipts = {{"data", {{"r-1", ErrorTicket(c.code)}}}};
    Outcome receipt =
        provider->receipts()
            ->ReadCheck(Reply(200, DumpJson(receipts)), std::vector<std::string>{"r-1"})
            .at(0);
    EXPECT_EQ(receipt.verdict, c.verdict) << c.code;
    EXPECT_EQ(receipt.reason, c.code);
    EXPECT_TRUE(receipt.detail.starts_with(std::string("Expo receipt error ") + c.code));
  }
  // An error without a type: failed, the token kept.
  Outcome untyped =
      Classify(*provider, Reply(200, Tickets({{{"status", "error"}, {"message", "x"}}})), 1)[0];
  EXPECT_EQ(untyped.verdict, Verdict::kFailed);
  EXPECT_EQ(untyped.reason, "EXPO_ERROR");
  // The same text with another type decides nothing: the type does.
  Json mislabeled = ErrorTicket("MessageTooBig");
  mislabeled["message"] =
      "\"ExponentPushToken[x]\" is not a registered push notification recipient";
  EXPECT_EQ(Classify(*provider, Reply(200, Tickets({mislabeled})), 1)[0].verdict, Verdict::kFailed);
}

TEST(ExpoProviderTest, ATicketCountOtherThanTheMessageCountRetriesEveryMessage) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  for (const std::string& body :
       {Tickets({OkTicket("a"), OkTicket("b")}), Tickets(OkTicket("a")), Tickets(Json::array())}) {
    std::vector<Outcome> out = Classify(*provider, Reply(200, body), 3);
    ASSERT_EQ(out.size(), 3u) << body;
    for (const Outcome& o : out) {
      EXPECT_EQ(o.verdict, Verdict::kRetry) << body;
      EXPECT_EQ(o.reason, "TICKET_COUNT_MISMATCH");
    }
  }
  EXPECT_EQ(Classify(*provider, Reply(200, Tickets({OkTicket("a"), OkTicket("b")})), 3)[0].detail,
            "Expo answered 2 tickets for 3 messages; every message of the request is sent again");
  for (const char* body : {"not json", "{}", ""}) {
    std::vector<Outcome> out = Classify(*provider, Reply(200, body), 2);
    EXPECT_EQ(out[0].verdict, Verdict::kRetry) << body;
    EXPECT_EQ(out[1].reason, "UNREADABLE_REPLY") << body;
  }
  http::Outcome truncated = Reply(200, Tickets({OkTicket("a")}));
  truncated.response.body_truncated = true;
  EXPECT_EQ(Classify(*provider, truncated, 1)[0].verdict, Verdict::kRetry);
}

TEST(ExpoProviderTest, CompressedRepliesAreRead) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  std::string tickets = Tickets({OkTicket("r-gz")});
  Outcome gz =
      Classify(*provider, Reply(200, GzipOf(tickets), {{"content-encoding", "gzip"}}), 1)[0];
  EXPECT_EQ(gz.verdict, Verdict::kAccepted);
  EXPECT_EQ(gz.receipt, "r-gz");
  Outcome corrupt =
      Classify(*provider, Reply(200, "\x1f\x8b garbage", {{"content-encoding", "gzip"}}), 1)[0];
  EXPECT_EQ(corrupt.verdict, Verdict::kRetry);
  std::string cut = GzipOf(tickets);
  cut.resize(cut.size() / 2);
  EXPECT_EQ(Classify(*provider, Reply(200, cut, {{"content-encoding", "gzip"}}), 1)[0].verdict,
            Verdict::kRetry);
  EXPECT_EQ(Classify(*provider, Reply(200, tickets, {{"content-encoding", "br"}}), 1)[0].verdict,
            Verdict::kRetry);
}

// ---- request-level errors ----------------------------------------------------------------------

TEST(ExpoProviderTest, RequestErrorsByCodeAndStatus) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  struct Case {
    int status;
    std::string body;
    Verdict verdict;
    std::string reason;
  };
  for (const Case& c : {
           Case{429, RequestError("TOO_MANY_REQUESTS"), Verdict::kRetry, "TOO_MANY_REQUESTS"},
           Case{401, RequestError("UNAUTHORIZED"), Verdict::kFailedConfig, "UNAUTHORIZED"},
           Case{403, "", Verdict::kFailedConfig, "HTTP_403"},
           Case{400, RequestError("PUSH_TOO_MANY_NOTIFICATIONS"), Verdict::kFailed,
                "PUSH_TOO_MANY_NOTIFICATIONS"},
           Case{400, RequestError("PUSH_TOO_MANY_RECEIPTS"), Verdict::kFailed,
                "PUSH_TOO_MANY_RECEIPTS"},
           Case{400, RequestError("VALIDATION_ERROR"), Verdict::kFailed, "VALIDATION_ERROR"},
           Case{500, RequestError("INTERNAL_SERVER_ERROR"), Verdict::kRetry,
                "INTERNAL_SERVER_ERROR"},
           Case{502, "<html>bad gateway</html>", Verdict::kRetry, "HTTP_502"},
           Case{503, "", Verdict::kRetry, "HTTP_503"},
           Case{200, RequestError("VALIDATION_ERROR"), Verdict::kFailed, "VALIDATION_ERROR"},
           Case{
               400,
               DumpJson(Json{
                   {"errors", {{{"code", "SOMETHING"}, {"message", "x"}, {"isTransient", true}}}}}),
               Verdict::kRetry, "SOMETHING"},
       }) {
    std::vector<Outcome> out = Classify(*provider, Reply(c.status, c.body), 2);
    ASSERT_EQ(out.size(), 2u);
    for (const Outcome& o : out) {
      EXPECT_EQ(o.verdict, c.verdict) << c.status << " " << c.body;
      EXPECT_EQ(o.reason, c.reason) << c.status << " " << c.body;
      EXPECT_EQ(o.detail.find(kAccessToken), std::string::npos);
    }
  }
  Outcome limited = Classify(
      *provider, Reply(429, RequestError("TOO_MANY_REQUESTS"), {{"retry-after", "7"}}), 1)[0];
  ASSERT_TRUE(limited.retry_after.has_value());
  EXPECT_EQ(*limited.retry_after, 7s);
  EXPECT_EQ(Classify(*provider, Reply(401, RequestError("UNAUTHORIZED")), 1)[0].detail,
            "Expo answered 401 UNAUTHORIZED");

  // No HTTP response: retried, except what no retry can fix.
  EXPECT_EQ(Classify(*provider, Failure(http::TransportError::kTimeout), 1)[0].verdict,
            Verdict::kRetry);
  EXPECT_EQ(Classify(*provider, Failure(http::TransportError::kConnect), 1)[0].verdict,
            Verdict::kRetry);
  EXPECT_EQ(Classify(*provider, Failure(http::TransportError::kTls), 1)[0].verdict,
            Verdict::kFailedConfig);
}

// Tokens of two Expo projects in one batch: the larger project's messages go again, the others
// fail (their tokens are kept).
TEST(ExpoProviderTest, TokensOfAnotherProjectLeaveTheBatch) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  Json details = {{"@ann/app", {Token(0), Token(2), Token(3)}}, {"@ann/other", {Token(1)}}};
  std::vector<Outcome> out =
      Classify(*provider, Reply(400, RequestError("PUSH_TOO_MANY_EXPERIENCE_IDS", details)), 4);
  ASSERT_EQ(out.size(), 4u);
  for (int i : {0, 2, 3}) {
    EXPECT_EQ(out[i].verdict, Verdict::kRetry);
    EXPECT_EQ(out[i].reason, "PUSH_TOO_MANY_EXPERIENCE_IDS");
  }
  EXPECT_EQ(out[1].verdict, Verdict::kFailed);
  EXPECT_EQ(out[1].detail, "the token belongs to Expo project @ann/other, the batch's to @ann/app");
  // Without the details: every message fails.
  for (const Outcome& o :
       Classify(*provider, Reply(400, RequestError("PUSH_TOO_MANY_EXPERIENCE_IDS")), 2)) {
    EXPECT_EQ(o.verdict, Verdict::kFailed);
  }
}

// ---- receipts ----------------------------------------------------------------------------------

TEST(ExpoProviderTest, ReceiptChecks) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  const ReceiptChecker* receipts = provider->receipts();
  ASSERT_NE(receipts, nullptr);
  EXPECT_EQ(receipts->max_receipts(), 1000u);
  EXPECT_EQ(receipts->first_check_after(), 15min);

  std::vector<std::string> ids = {"r-ok", "r-dead", "r-later", "r-rate"};
  Result<http::Request> request = receipts->BuildCheck(ids, {});
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(request->method, "POST");
  EXPECT_EQ(request->url, kReceiptsUrl);
  EXPECT_EQ(request->body, R"({"ids":["r-ok","r-dead","r-later","r-rate"]})");
  EXPECT_EQ(HeaderOf(*request, "Authorization"), std::string("Bearer ") + kAccessToken);
  EXPECT_EQ(HeaderOf(*request, "Content-Type"), "application/json");

  Json answer = {{"data",
                  {{"r-ok", {{"status", "ok"}}},
                   {"r-dead", ErrorTicket("DeviceNotRegistered")},
                   {"r-rate", ErrorTicket("MessageRateExceeded")},
                   {"unasked", {{"status", "ok"}}}}}};
  std::vector<Outcome> out = receipts->ReadCheck(Reply(200, DumpJson(answer)), ids);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].verdict, Verdict::kDelivered);
  EXPECT_EQ(out[1].verdict, Verdict::kFailedRemoveToken);
  EXPECT_TRUE(out[1].unsubscribed);
  EXPECT_EQ(out[2].verdict, Verdict::kPending);  // no receipt yet
  EXPECT_EQ(out[2].reason, "RECEIPT_NOT_READY");
  EXPECT_EQ(out[3].verdict, Verdict::kRetry);  // Expo asks for the message again
}

// A check that fails as a whole says nothing about the messages: all are asked about again.
TEST(ExpoProviderTest, AFailedCheckLeavesEveryReceiptPending) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  const ReceiptChecker* receipts = provider->receipts();
  std::vector<std::string> ids = {"a", "b"};
  struct Case {
    http::Outcome reply;
    std::string reason;
  };
  for (const Case& c :
       {Case{Reply(503, "", {{"retry-after", "30"}}), "HTTP_503"},
        Case{Reply(429, RequestError("TOO_MANY_REQUESTS")), "TOO_MANY_REQUESTS"},
        Case{Reply(401, RequestError("UNAUTHORIZED")), "UNAUTHORIZED"},
        Case{Reply(400, RequestError("PUSH_TOO_MANY_RECEIPTS")), "PUSH_TOO_MANY_RECEIPTS"},
        Case{Reply(200, "not json"), "UNREADABLE_REPLY"},
        Case{Reply(200, R"({"data":[]})"), "UNREADABLE_REPLY"},
        Case{Failure(http::TransportError::kConnect), "CONNECT"}}) {
    std::vector<Outcome> out = receipts->ReadCheck(c.reply, ids);
    ASSERT_EQ(out.size(), 2u);
    for (const Outcome& o : out) {
      EXPECT_EQ(o.verdict, Verdict::kPending) << c.reason;
      EXPECT_EQ(o.reason, c.reason);
    }
  }
  std::vector<Outcome> later = receipts->ReadCheck(Reply(503, "", {{"retry-after", "30"}}), ids);
  ASSERT_TRUE(later[0].retry_after.has_value());
  EXPECT_EQ(*later[0].retry_after, 30s);
}

TEST(ExpoProviderTest, TheReceiptDelayIsConfigurable) {
  Result<std::unique_ptr<Provider>> direct =
      NewExpoProvider(test::ValidCredentials("expo"), ExpoOptions{1s});
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ((*direct)->receipts()->first_check_after(), 1s);

  // The spec takes it from the process's settings (HERALD_EXPO_RECEIPT_DELAY, set at startup).
  const ProviderSettings saved = GetProviderSettings();
  ProviderSettings settings = saved;
  settings.expo_receipt_delay = 3s;
  SetProviderSettings(settings);
  auto provider = Make();
  SetProviderSettings(saved);
  ASSERT_NE(provider, nullptr);
  EXPECT_EQ(provider->receipts()->first_check_after(), 3s);
}

// ---- connection test ---------------------------------------------------------------------------

TEST(ExpoProviderTest, ProbeAsksForAReceiptNobodyHas) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  std::optional<http::Request> probe = ProbeRequest(*provider);
  ASSERT_TRUE(probe.has_value());
  const http::Request& request = *probe;
  EXPECT_EQ(request.url, kReceiptsUrl);
  EXPECT_EQ(request.body, R"({"ids":["00000000-0000-0000-0000-000000000000"]})");
  EXPECT_EQ(HeaderOf(request, "Authorization"), std::string("Bearer ") + kAccessToken);

  ProbeResult ok = provider->ReadProbe(Reply(200, R"({"data":{}})"));
  EXPECT_TRUE(ok.ok);
  EXPECT_EQ(ok.detail, "Expo accepted the access token");

  ProbeResult refused = provider->ReadProbe(Reply(401, RequestError("UNAUTHORIZED")));
  EXPECT_FALSE(refused.ok);
  EXPECT_EQ(refused.reason, "UNAUTHORIZED");
  EXPECT_EQ(refused.detail.find(kAccessToken), std::string::npos);
  EXPECT_FALSE(provider->ReadProbe(Reply(503, "")).ok);
  EXPECT_EQ(provider->ReadProbe(Reply(503, "")).reason, "HTTP_503");
  EXPECT_FALSE(provider->ReadProbe(Reply(200, RequestError("UNAUTHORIZED"))).ok);
  ProbeResult unreachable = provider->ReadProbe(Failure(http::TransportError::kConnect));
  EXPECT_FALSE(unreachable.ok);
  EXPECT_EQ(unreachable.reason, "CONNECT");

  // Without an access token the check shows that Expo answers, and says what it cannot show.
  auto open = Make(Json::object());
  ASSERT_NE(open, nullptr);
  int count = 0;
  HeaderOf(**open->BuildProbe({}), "Authorization", &count);
  EXPECT_EQ(count, 0);
  ProbeResult answered = open->ReadProbe(Reply(200, R"({"data":{}})"));
  EXPECT_TRUE(answered.ok);
  EXPECT_NE(answered.detail.find("no access token"), std::string::npos);
}

}  // namespace
}  // namespace herald::providers
