#include "api/input.h"

#include <gtest/gtest.h>

namespace herald::api {
namespace {

server::Request WithBody(std::string body) {
  server::Request r;
  r.body = std::move(body);
  return r;
}

TEST(InputTest, ParseObjectBodyRejectsBadInput) {
  EXPECT_TRUE(ParseObjectBody(WithBody("{\"a\":1}")).ok());
  EXPECT_EQ(ParseObjectBody(WithBody("[1]")).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseObjectBody(WithBody("{\"a\":")).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseObjectBody(WithBody("")).status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(ParseObjectBody(WithBody(""), true).ok());
  std::string deep(65, '[');
  deep += std::string(65, ']');
  auto too_deep = ParseObjectBody(WithBody("{\"a\":" + deep + "}"));
  EXPECT_NE(too_deep.status().message().find("nested deeper than 64"), std::string::npos);
  auto bad_utf8 = ParseObjectBody(WithBody("{\"a\":\"\xff\xfe\"}"));
  EXPECT_NE(bad_utf8.status().message().find("UTF-8"), std::string::npos);
}

TEST(InputTest, TypedReaders) {
  Json body = {{"s", "x"}, {"n", 5}, {"b", true}, {"nul", nullptr}, {"arr", {"a", "b"}}};
  EXPECT_EQ(*OptString(body, "s").value(), "x");
  EXPECT_FALSE(OptString(body, "missing").value().has_value());
  EXPECT_EQ(OptString(body, "n").status().message(), "n must be a string");
  EXPECT_EQ(RequiredString(body, "missing", "credentials.x").status().message(),
            "credentials.x is required");
  auto nullable = OptNullableString(body, "nul");
  ASSERT_TRUE(nullable.ok());
  EXPECT_TRUE(nullable->has_value());
  EXPECT_FALSE(nullable->value().has_value());
  EXPECT_EQ(OptBool(body, "s").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(OptStringArray(body, "arr").value()->size(), 2u);
  EXPECT_EQ(OptStringArray(body, "s").status().code(), Code::kInvalidArgument);
}

TEST(InputTest, UnknownFieldsAndIds) {
  EXPECT_TRUE(RejectUnknownFields({{"a", 1}}, {"a", "b"}).ok());
  EXPECT_EQ(RejectUnknownFields({{"c", 1}}, {"a"}).message(), "property c should not exist");
  EXPECT_FALSE(CheckId("", "subscriberId").ok());
  EXPECT_FALSE(CheckId(std::string(257, 'x'), "subscriberId").ok());
  EXPECT_FALSE(CheckId("a\nb", "subscriberId").ok());
  EXPECT_TRUE(CheckId("user 1/x", "subscriberId").ok());
}

TEST(InputTest, QueryInt) {
  server::Request r;
  r.query = {{"limit", "5"}, {"bad", "5x"}, {"big", "1000"}};
  EXPECT_EQ(*QueryInt(r, "limit", 1, 100).value(), 5);
  EXPECT_FALSE(QueryInt(r, "bad", 1, 100).ok());
  EXPECT_FALSE(QueryInt(r, "big", 1, 100).ok());
  EXPECT_FALSE(QueryInt(r, "none", 1, 100).value().has_value());
}

}  // namespace
}  // namespace herald::api
