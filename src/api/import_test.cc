// The bulk subscriber bodies (import.h): Novu's bulk create and the NDJSON import.
#include "api/import.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "api/input.h"

namespace herald::api {
namespace {

ImportRules Rules(std::size_t max_tokens = 100) {
  ImportRules rules;
  rules.max_tokens = max_tokens;
  return rules;
}

// DecodeImportLine's error for `line` ("" when it is accepted).
std::string LineError(const std::string& line, const ImportRules& rules = Rules()) {
  store::ImportedSubscriber out;
  Status st = DecodeImportLine(line, rules, out);
  return st.ok() ? "" : st.message();
}

TEST(ImportTest, NdjsonLinesAreNumberedAndBlankOnesSkipped) {
  NdjsonLines lines("a\n\n  \r\nb\r\n\t\nc");
  std::vector<std::pair<std::string, std::size_t>> seen;
  std::string_view line;
  std::size_t number = 0;
  while (lines.Next(&line, &number)) seen.emplace_back(std::string(line), number);
  EXPECT_EQ(seen, (std::vector<std::pair<std::string, std::size_t>>{{"a", 1}, {"b", 4}, {"c", 6}}));
  NdjsonLines trailing("x\n");
  ASSERT_TRUE(trailing.Next(&line, &number));
  EXPECT_FALSE(trailing.Next(&line, &number));
  NdjsonLines empty("");
  EXPECT_FALSE(empty.Next(&line, &number));
}

TEST(ImportTest, DecodesEveryMemberOfALine) {
  store::ImportedSubscriber out;
  out.topics = {"left over"};
  Status st = DecodeImportLine(
      R"({"subscriberId":"u1","firstName":"Ann","lastName":null,"email":"a@example.com",)"
      R"("phone":"+1","avatar":"https://example.com/a.png","locale":"en","timezone":"UTC",)"
      R"("data":{"plan":"pro"},"channels":[{"providerId":"push-webhook",)"
      R"("integrationIdentifier":"hook","credentials":{"deviceTokens":["t1","t2","t1"]}},)"
      R"({"providerId":"expo","credentials":{"deviceTokens":["ExponentPushToken[x]"]}}],)"
      R"("topics":["news","sports"]})",
      Rules(), out);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(out.subscriber_id, "u1");
  EXPECT_EQ(out.profile.first_name, std::optional<std::optional<std::string>>("Ann"));
  ASSERT_TRUE(out.profile.last_name.has_value());
  EXPECT_FALSE(out.profile.last_name->has_value());  // null clears
  EXPECT_EQ((**out.profile.data)["plan"], "pro");
  ASSERT_EQ(out.channels.size(), 2u);
  EXPECT_EQ(out.channels[0].provider_id, "push-webhook");
  EXPECT_EQ(out.channels[0].integration_identifier, std::optional<std::string>("hook"));
  ASSERT_EQ(out.channels[0].tokens.size(), 2u);  // de-duplicated
  EXPECT_EQ(out.channels[1].tokens[0].token, "ExponentPushToken[x]");
  EXPECT_EQ(out.topics, (std::vector<std::string>{"news", "sports"}));

  ASSERT_TRUE(DecodeImportLine(R"({"subscriberId":"u2"})", Rules(), out).ok());
  EXPECT_TRUE(out.profile.empty());
  EXPECT_TRUE(out.channels.empty());
  EXPECT_TRUE(out.topics.empty());
}

TEST(ImportTest, RefusesBadLinesNamingTheField) {
  EXPECT_EQ(LineError(R"({"firstName":"Ann"})"), "subscriberId is required");
  EXPECT_EQ(LineError(R"({"subscriberId":""})"), "subscriberId must not be empty");
  EXPECT_EQ(LineError(R"({"subscriberId":"u","email":5})"), "email must be a string");
  EXPECT_EQ(LineError(R"({"subscriberId":"u","data":[1]})"), "data must be an object");
  EXPECT_EQ(LineError(R"({"subscriberId":"u","topic":["x"]})"), "property topic should not exist");
  EXPECT_EQ(LineError(R"({"subscriberId":"u","topics":"news"})"),
            "topics must be an array of strings");
  EXPECT_EQ(LineError(R"({"subscriberId":"u","topics":["ok",""]})"), "topics[1] must not be empty");
  EXPECT_EQ(LineError(R"({"subscriberId":"u","channels":{}})"), "channels must be an array");
  EXPECT_EQ(LineError(R"({"subscriberId":"u","channels":[5]})"), "channels[0] must be an object");
  EXPECT_EQ(LineError(R"({"subscriberId":"u","channels":[{"providerId":"sms"}]})"),
            "channels[0].providerId sms is not a supported push provider");
  EXPECT_EQ(LineError(R"({"subscriberId":"u","channels":[{"providerId":"fcm","tokens":[]}]})"),
            "property channels[0].tokens should not exist");
  EXPECT_EQ(LineError(R"({"subscriberId":"u","channels":[{"providerId":"fcm","credentials":[]}]})"),
            "channels[0].credentials must be an object");
  EXPECT_EQ(LineError(R"([{"subscriberId":"u"}])"),
            "a line must be a JSON object: one subscriber per line");
  EXPECT_EQ(LineError(R"({"subscriberId":"u")").rfind("Malformed JSON", 0), 0u);
  EXPECT_EQ(LineError(R"({"subscriberId":"u","channels":[{"providerId":"push-webhook",)"
                      R"("credentials":{"deviceTokens":["a","b","c"]}}]})",
                      Rules(2)),
            "channels[0].credentials.deviceTokens holds 3 device tokens; the limit is 2");
  std::string long_line =
      R"({"subscriberId":"u","data":{"x":")" + std::string(kMaxImportLineBytes, 'x') + R"("}})";
  EXPECT_EQ(LineError(long_line), "a line holds at most 1048576 bytes");
}

// A token is refused exactly as PUT /v1/subscribers/{id}/credentials refuses it.
TEST(ImportTest, RefusesTokensAsTheCredentialsRouteDoes) {
  const providers::ProviderSpec* expo = providers::FindProvider("expo");
  ASSERT_NE(expo, nullptr);
  auto put = NormalizeTokens(*expo, {"not-an-expo-token"}, {}, "credentials.deviceTokens");
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(LineError(R"({"subscriberId":"u","channels":[{"providerId":"expo",)"
                      R"("credentials":{"deviceTokens":["not-an-expo-token"]}}]})"),
            "channels[0]." + put.status().message());
}

TEST(ImportTest, ReadImportNamesTheFirstBadLine) {
  const std::string good = R"({"subscriberId":"u1","topics":["news"]})";
  auto packed = ReadImport(good + "\n\n" + good + "\r\n" + good, Rules());
  ASSERT_TRUE(packed.ok()) << packed.status().message();
  EXPECT_EQ(packed->size(), 3u);

  auto bad = ReadImport(good + "\n\n" + good + "\n{\"subscriberId\":7}\n{\"x\":1}\n", Rules());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "line 4: subscriberId must be a string");

  auto over = ReadImport(R"({"subscriberId":"u","channels":[{"providerId":"push-webhook",)"
                         R"("credentials":{"deviceTokens":["a","b"]}}]})",
                         Rules(1));
  EXPECT_EQ(over.status().message().rfind("line 1: channels[0].credentials.deviceTokens", 0), 0u);

  EXPECT_EQ(ReadImport(" \n\n", Rules()).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ReadImport("", Rules()).status().code(), Code::kInvalidArgument);
}

// What ReadImport packs reads back as DecodeImportLine read it, line by line.
TEST(ImportTest, PackedSubscribersReadBackAsDecoded) {
  std::vector<std::string> lines = {
      R"({"subscriberId":"u1","firstName":"Ann","lastName":null,"email":"a@example.com",)"
      R"("phone":"","avatar":"https://example.com/a.png","locale":"en","timezone":"UTC",)"
      R"("data":{"plan":"pro","n":[1,2.5,{"x":null}]},"channels":[{"providerId":"push-webhook",)"
      R"("integrationIdentifier":"hook","credentials":{"deviceTokens":["t1","t2"],)"
      R"("webhookUrl":"https://example.com/w"}},{"providerId":"expo","credentials":)"
      R"({"deviceTokens":["ExponentPushToken[x]"]}},{"providerId":"fcm"}],"topics":["a","b"]})",
      R"({"subscriberId":"u2","data":null})",
      R"({"subscriberId":"u3 with spaces/and é","channels":[],"topics":[]})",
  };
  std::string body;
  for (const std::string& line : lines) body += line + "\n\n";
  auto packed = ReadImport(body, Rules());
  ASSERT_TRUE(packed.ok()) << packed.status().message();
  ASSERT_EQ(packed->size(), lines.size());
  store::ImportedSubscriber got;
  got.topics = {"stale"};
  for (std::size_t i = 0; i < lines.size(); ++i) {
    store::ImportedSubscriber want;
    ASSERT_TRUE(DecodeImportLine(lines[i], Rules(), want).ok());
    auto more = packed->Next(got);
    ASSERT_TRUE(more.ok()) << more.status().message();
    ASSERT_TRUE(*more);
    EXPECT_EQ(got.where, "line " + std::to_string(2 * i + 1));
    EXPECT_EQ(got.subscriber_id, want.subscriber_id);
    EXPECT_EQ(got.profile.first_name, want.profile.first_name);
    EXPECT_EQ(got.profile.last_name, want.profile.last_name);
    EXPECT_EQ(got.profile.email, want.profile.email);
    EXPECT_EQ(got.profile.phone, want.profile.phone);
    EXPECT_EQ(got.profile.avatar, want.profile.avatar);
    EXPECT_EQ(got.profile.locale, want.profile.locale);
    EXPECT_EQ(got.profile.timezone, want.profile.timezone);
    EXPECT_EQ(got.profile.data, want.profile.data);
    ASSERT_EQ(got.channels.size(), want.channels.size());
    for (std::size_t c = 0; c < want.channels.size(); ++c) {
      EXPECT_EQ(got.channels[c].provider_id, want.channels[c].provider_id);
      EXPECT_EQ(got.channels[c].integration_identifier, want.channels[c].integration_identifier);
      EXPECT_EQ(got.channels[c].webhook_url, want.channels[c].webhook_url);
      ASSERT_EQ(got.channels[c].tokens.size(), want.channels[c].tokens.size());
      for (std::size_t t = 0; t < want.channels[c].tokens.size(); ++t) {
        EXPECT_EQ(got.channels[c].tokens[t].token, want.channels[c].tokens[t].token);
        EXPECT_EQ(got.channels[c].tokens[t].identity, want.channels[c].tokens[t].identity);
      }
    }
    EXPECT_EQ(got.topics, want.topics);
  }
  auto end = packed->Next(got);
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(*end);
}

TEST(ImportTest, BulkCreateTakesOneToFiveHundredSubscribers) {
  Json body = {{"subscribers",
                {{{"subscriberId", "a"}, {"firstName", "Ann"}, {"channels", Json::array()}},
                 {{"subscriberId", "b"}, {"email", nullptr}}}}};
  auto items = DecodeBulkCreate(body);
  ASSERT_TRUE(items.ok()) << items.status().message();
  ASSERT_EQ(items->size(), 2u);
  EXPECT_EQ((*items)[0].subscriber_id, "a");
  EXPECT_EQ((*items)[0].profile.first_name, std::optional<std::optional<std::string>>("Ann"));
  EXPECT_TRUE((*items)[0].channels.empty());  // as POST /v1/subscribers, other members unread
  ASSERT_TRUE((*items)[1].profile.email.has_value());

  auto error = [](const Json& b) { return DecodeBulkCreate(b).status().message(); };
  EXPECT_EQ(error(Json::object()), "subscribers should not be empty");
  EXPECT_EQ(error({{"subscribers", Json::array()}}), "subscribers should not be empty");
  EXPECT_EQ(error({{"subscribers", "a"}}), "subscribers must be an array");
  Json many = Json::array();
  for (int i = 0; i < 501; ++i) many.push_back({{"subscriberId", "s" + std::to_string(i)}});
  EXPECT_EQ(error({{"subscribers", many}}), "subscribers must contain no more than 500 elements");
  many.erase(many.size() - 1);
  EXPECT_TRUE(DecodeBulkCreate({{"subscribers", many}}).ok());
  EXPECT_EQ(error({{"subscribers", {{{"subscriberId", "a"}}, 5}}}),
            "subscribers[1] must be an object");
  EXPECT_EQ(error({{"subscribers", {{{"subscriberId", "a"}}, {{"firstName", "x"}}}}}),
            "subscribers[1].subscriberId is required");
  EXPECT_EQ(error({{"subscribers", {{{"subscriberId", "a"}, {"email", 5}}}}}),
            "subscribers[0].email must be a string");
}

}  // namespace
}  // namespace herald::api
