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

}  // namespace
}  // namespace herald
