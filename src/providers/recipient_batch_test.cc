// Grouping of identical messages into requests under a provider's limits, and the small shared
// readers of providers/recipient_batch.h.
#include "providers/recipient_batch.h"

#include <gtest/gtest.h>

namespace herald::providers {
namespace {

PushMessage Message(std::string id, std::string token, std::string content = "same") {
  PushMessage m;
  m.message_id = std::move(id);
  m.device_token = std::move(token);
  m.content = std::move(content);
  return m;
}

Result<std::string> ContentText(const PushMessage& m) {
  if (m.content == "bad") return Refusal("INVALID_OVERRIDES", "bad content");
  return "{\"c\":\"" + m.content + "\"}";
}

std::vector<const PushMessage*> Pointers(const std::vector<PushMessage>& messages) {
  std::vector<const PushMessage*> out;
  for (const PushMessage& m : messages) out.push_back(&m);
  return out;
}

TEST(RecipientBatchTest, GroupsIdenticalContentInOrderOfFirstAppearance) {
  std::vector<PushMessage> messages = {Message("1", "a"), Message("2", "b", "other"),
                                       Message("3", "c"), Message("4", "d", "bad"),
                                       Message("5", "e", "other")};
  auto batch = Pointers(messages);
  std::vector<std::pair<std::size_t, Outcome>> refused;
  auto groups = GroupByContent(batch, {10, 0}, ContentText, refused);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].content, R"({"c":"same"})");
  EXPECT_EQ(groups[0].messages, (std::vector<std::size_t>{0, 2}));
  EXPECT_EQ(groups[1].messages, (std::vector<std::size_t>{1, 4}));
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].first, 3u);
  EXPECT_EQ(refused[0].second.verdict, Verdict::kFailed);
  EXPECT_EQ(refused[0].second.reason, "INVALID_OVERRIDES");
  EXPECT_EQ(RecipientArray(batch, groups[0]), R"(["a","c"])");
}

TEST(RecipientBatchTest, SplitsByCountAndBytesAndNeverRepeatsATokenInARequest) {
  std::vector<PushMessage> messages;
  for (int i = 0; i < 25; ++i)
    messages.push_back(Message(std::to_string(i), "t" + std::to_string(i)));
  messages.push_back(Message("dup", "t0"));  // the same device again: another request
  auto batch = Pointers(messages);
  std::vector<std::pair<std::size_t, Outcome>> refused;
  auto groups = GroupByContent(batch, {10, 0}, ContentText, refused);
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0].messages.size(), 10u);
  EXPECT_EQ(groups[1].messages.size(), 10u);
  EXPECT_EQ(groups[2].messages.size(), 6u);
  EXPECT_EQ(groups[2].messages.back(), 25u);

  // Bytes: each token costs its JSON string and a comma; the content and an envelope count too.
  std::vector<PushMessage> long_tokens;
  for (int i = 0; i < 10; ++i)
    long_tokens.push_back(Message(std::to_string(i), std::string(98, 'a' + i)));
  auto long_batch = Pointers(long_tokens);
  auto by_bytes = GroupByContent(long_batch, {100, 256 + 12 + 3 * 101}, ContentText, refused);
  ASSERT_EQ(by_bytes.size(), 4u);
  EXPECT_EQ(by_bytes[0].messages.size(), 3u);
}

TEST(RecipientBatchTest, WithMembersAndOrigin) {
  EXPECT_EQ(WithMembers("\"a\":1", R"({"b":2})", "\"c\":3"), R"({"a":1,"b":2,"c":3})");
  EXPECT_EQ(WithMembers("\"a\":1", "{}", ""), R"({"a":1})");
  EXPECT_EQ(WithMembers("", R"({"b":2})", ""), R"({"b":2})");
  EXPECT_EQ(ApiOrigin(Json{{"baseUrl", "http://127.0.0.1:9/x//"}}, "https://d"),
            "http://127.0.0.1:9/x");
  EXPECT_EQ(ApiOrigin(Json::object(), "https://d"), "https://d");
}

TEST(RecipientBatchTest, Utf8) {
  EXPECT_TRUE(IsUtf8("plain"));
  EXPECT_TRUE(IsUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsUtf8("\xc3"));              // cut short
  EXPECT_FALSE(IsUtf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(IsUtf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(IsUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(IsUtf8("\xff"));
}

TEST(RecipientBatchTest, TypedOverrideReads) {
  Json overrides = {
      {"s", "x"}, {"b", true}, {"n", 5}, {"neg", -1}, {"big", 18446744073709551615ULL}};
  std::optional<std::string> s;
  std::optional<bool> b;
  std::optional<std::int64_t> n;
  EXPECT_TRUE(ReadString(overrides, "s", s).ok());
  EXPECT_EQ(s, "x");
  EXPECT_TRUE(ReadBool(overrides, "b", b).ok());
  EXPECT_EQ(b, true);
  EXPECT_TRUE(ReadInteger(overrides, "n", 0, 10, n).ok());
  EXPECT_EQ(n, 5);
  EXPECT_EQ(ReasonOf(ReadString(overrides, "n", s), ""), "INVALID_OVERRIDES");
  EXPECT_EQ(ReadBool(overrides, "s", b).message(), "overrides.s must be a boolean");
  EXPECT_FALSE(ReadInteger(overrides, "neg", 0, 10, n).ok());
  EXPECT_FALSE(ReadInteger(overrides, "big", 0, 10, n).ok());
  std::optional<std::string> absent;
  EXPECT_TRUE(ReadString(overrides, "missing", absent).ok());
  EXPECT_FALSE(absent.has_value());
}

TEST(RecipientBatchTest, PayloadWithDataOverride) {
  PushMessage m = Message("1", "a");
  m.payload_json = R"({"k":1,"subscriber":{"id":"s"},"step":{}})";
  m.overrides = {{"data", {{"k", 2}, {"extra", "x"}}}};
  Result<OrderedJson> data = PayloadWithDataOverride(m);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(DumpOrdered(*data), R"({"k":2,"extra":"x"})");
  m.overrides = {{"data", "nope"}};
  EXPECT_EQ(ReasonOf(PayloadWithDataOverride(m).status(), ""), "INVALID_OVERRIDES");
  EXPECT_EQ(ReasonOf(CheckContentSize("X", 11, 10), ""), "MESSAGE_TOO_LARGE");
  EXPECT_TRUE(CheckContentSize("X", 10, 10).ok());
}

}  // namespace
}  // namespace herald::providers
