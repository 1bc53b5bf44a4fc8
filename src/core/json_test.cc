#include "core/json.h"

#include <gtest/gtest.h>

namespace herald {
namespace {

TEST(JsonTest, ParsesWithinLimits) {
  std::string error;
  auto v = ParseJson(R"({"a":[1,{"b":"\u00fc \"]\""}]})", &error);
  ASSERT_TRUE(v.has_value()) << error;
  EXPECT_EQ((*v)["a"][1]["b"], "\xc3\xbc \"]\"");
}

TEST(JsonTest, DepthLimitCountsOnlyStructure) {
  std::string error;
  std::string ok = std::string(64, '[') + std::string(64, ']');
  EXPECT_TRUE(ParseJson(ok, &error).has_value());
  std::string deep = std::string(65, '[') + std::string(65, ']');
  EXPECT_FALSE(ParseJson(deep, &error).has_value());
  EXPECT_NE(error.find("64"), std::string::npos);
  // Brackets inside strings do not count.
  EXPECT_TRUE(ParseJson("\"" + deep + "\"", &error).has_value());
}

TEST(JsonTest, RejectsInvalidUtf8AndMalformed) {
  std::string error;
  for (std::string bad : {"\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xe2\x82\""}) {
    EXPECT_FALSE(ParseJson(bad, &error).has_value());
    EXPECT_NE(error.find("UTF-8"), std::string::npos) << error;
  }
  EXPECT_TRUE(ParseJson("\"\xf0\x9f\x98\x80\"", &error).has_value());
  EXPECT_FALSE(ParseJson("{\"a\":}", &error).has_value());
  EXPECT_NE(error.find("Malformed JSON"), std::string::npos);
  EXPECT_FALSE(ParseJson("{} extra", &error).has_value());
}

TEST(JsonTest, AppendJsonStringMatchesTheLibrary) {
  std::string every_control;
  for (int c = 0; c < 0x20; ++c) every_control.push_back(static_cast<char>(c));
  for (std::string text :
       {std::string(), std::string("plain"), std::string("quote \" and \\ slash / del \x7f"),
        every_control, std::string("\xc3\xbc \xe2\x82\xac \xf0\x9f\x98\x80"),
        std::string("nul \0 inside", 13),
        // Not UTF-8: replaced by U+FFFD exactly as DumpJson does.
        std::string("bad \xff byte"), std::string("cut \xe2\x82"), std::string("\xed\xa0\x80")}) {
    std::string out = "prefix:";
    AppendJsonString(out, text);
    EXPECT_EQ(out, "prefix:" + DumpJson(Json(text))) << text;
  }
}

// Expected texts printed by Node.js 20: JSON.stringify(JSON.parse(input)).
TEST(JsonTest, StringifiesLikeJavaScript) {
  struct Case {
    const char* input;
    const char* node;
  } cases[] = {
      {R"({"b":1,"a":[1.0,2.50,-0.0,1e21,1e-7,123456789012345678901,0.1,1e300,5e-324,100,1.5e-6,)"
       R"(0.000001,123e-20,9007199254740993,-12345678901234567890,2.2250738585072014e-308,)"
       R"(1.7976931348623157e308]})",
       R"({"b":1,"a":[1,2.5,0,1e+21,1e-7,123456789012345680000,0.1,1e+300,5e-324,100,0.0000015,)"
       R"(0.000001,1.23e-18,9007199254740992,-12345678901234567000,2.2250738585072014e-308,)"
       R"(1.7976931348623157e+308]})"},
      {R"({"z":{"y":2,"x":{"w":true,"v":null}},"u":"s\u0001\"\\/é","subscriber":5,"t":[]})",
       R"({"z":{"y":2,"x":{"w":true,"v":null}},"u":"s\u0001\"\\/é","subscriber":5,"t":[]})"},
      {R"({"n":1e21,"m":123456789012345680000,"k":1e20,"j":0.0000001,"i":-1e-7, "h":   42 })",
       R"({"n":1e+21,"m":123456789012345680000,"k":100000000000000000000,"j":1e-7,"i":-1e-7,"h":42})"},
      // Keys that are array indices come first, in numeric order, at every level.
      {R"({"10":1,"9":2,"a":3,"01":4,"4294967295":5,"4294967294":6,"0":7,"-1":8,"1.5":9,)"
       R"("n":{"b":1,"2":2,"1":3}})",
       R"({"0":7,"9":2,"10":1,"4294967294":6,"a":3,"01":4,"4294967295":5,"-1":8,"1.5":9,)"
       R"("n":{"1":3,"2":2,"b":1}})"},
      {"{}", "{}"},
      {"[]", "[]"},
  };
  for (const Case& c : cases) {
    std::optional<OrderedJson> parsed = ParseOrderedJson(c.input);
    ASSERT_TRUE(parsed.has_value()) << c.input;
    std::string out;
    AppendJsonLikeJavaScript(out, *parsed);
    EXPECT_EQ(out, c.node) << c.input;
  }
  // Top-level members can keep their place with a slot byte instead of their value.
  std::string out;
  AppendJsonLikeJavaScript(out, *ParseOrderedJson(R"({"b":1,"subscriber":{"x":1},"a":{"step":2}})"),
                           {{"subscriber", '\x01'}, {"step", '\x02'}});
  EXPECT_EQ(out, "{\"b\":1,\"subscriber\":\x01,\"a\":{\"step\":2}}");
  EXPECT_FALSE(ParseOrderedJson("{\"a\":").has_value());
  EXPECT_FALSE(ParseOrderedJson(std::string(100, '[') + std::string(100, ']')).has_value());
}

TEST(JsonTest, FindsAMembersTextWithoutParsingTheRest) {
  const std::string_view event =
      R"( { "name" : "wf", "to":[{"subscriberId":"a}\"]{"},"b"], "payload" : {"x":[1,{"y":"}"}]} } )";
  EXPECT_EQ(FindMemberText(event, "payload"), R"({"x":[1,{"y":"}"}]})");
  EXPECT_EQ(FindMemberText(event, "name"), R"("wf")");
  EXPECT_EQ(FindMemberText(event, "to"), R"([{"subscriberId":"a}\"]{"},"b"])");
  EXPECT_EQ(FindMemberText(event, "missing"), std::string_view());
  EXPECT_EQ(FindMemberText(R"({"payload":1,"payload":{"z":2}})", "payload"), R"({"z":2})");
  EXPECT_EQ(FindMemberText(R"({"n":-1.5e3,"t":true,"p":null})", "p"), "null");
  EXPECT_EQ(FindMemberText(R"({"n":-1.5e3,"t":true,"p":null})", "n"), "-1.5e3");
  EXPECT_EQ(FindMemberText("{}", "payload"), std::string_view());
  // What it cannot tell: the caller parses the whole text.
  for (std::string_view unsure : {R"({"pay\u006coad":{}})", "[1]", R"({"a":)", R"({"a":1 "b":2})",
                                  R"({"a":"open)", "", "   "}) {
    EXPECT_FALSE(FindMemberText(unsure, "payload").has_value()) << unsure;
  }
}

}  // namespace
}  // namespace herald
