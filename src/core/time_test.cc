#include "core/time.h"

#include <gtest/gtest.h>

#include "core/ids.h"

namespace herald {
namespace {

TEST(TimeTest, IsoRoundTrip) {
  EXPECT_EQ(IsoTime(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(IsoTime(1704067200123), "2024-01-01T00:00:00.123Z");
  EXPECT_EQ(ParseIsoTime("2024-01-01T00:00:00.123Z"), 1704067200123);
  EXPECT_EQ(ParseIsoTime("2024-01-01T00:00:00Z"), 1704067200000);
  EXPECT_FALSE(ParseIsoTime("2024-01-01").has_value());
  EXPECT_FALSE(ParseIsoTime("2024-13-01T00:00:00Z").has_value());
}

TEST(TimeTest, TimestampFilters) {
  EXPECT_EQ(ParseTimestamp("2024-01-01"), 1704067200000);
  EXPECT_EQ(ParseTimestamp("2024-01-01T00:00:00.123Z"), 1704067200123);
  EXPECT_EQ(ParseTimestamp("2024-01-01T00:00:00"), 1704067200000);  // no zone: UTC
  EXPECT_EQ(ParseTimestamp("2024-01-01T02:30:00+02:30"), 1704067200000);
  EXPECT_EQ(ParseTimestamp("2023-12-31T22:00:00.5-02:00"), 1704067200500);
  for (const char* bad : {"", "yesterday", "2024-1-1", "2024-01-01T", "2024-01-01T00:00:00+2",
                          "2024-01-01T00:00:00+24:00", "2024-01-01 00:00:00Z", "1704067200000",
                          "2024-02-30X", "2024-01-01T00:00:00ZZ"}) {
    EXPECT_FALSE(ParseTimestamp(bad).has_value()) << bad;
  }
}

TEST(IdsTest, Shapes) {
  std::string id = NewObjectId();
  EXPECT_EQ(id.size(), 24u);
  EXPECT_NE(id, NewObjectId());
  EXPECT_EQ(RandomAlnum(12).size(), 12u);
  std::string uuid = NewUuid();
  EXPECT_EQ(uuid.size(), 36u);
  EXPECT_EQ(uuid[14], '7');
  for (std::size_t i = 0; i < uuid.size(); ++i) {  // 8-4-4-4-12 lowercase hex, RFC 9562 variant
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      EXPECT_EQ(uuid[i], '-') << uuid;
    } else {
      EXPECT_NE(std::string_view("0123456789abcdef").find(uuid[i]), std::string_view::npos) << uuid;
    }
  }
  EXPECT_NE(std::string_view("89ab").find(uuid[19]), std::string_view::npos) << uuid;
  std::string first = NewObjectId();
  std::string second = NewObjectId();
  EXPECT_LT(first, second);  // increasing within a process (barring the 24-bit counter's wrap)
  std::string a = NewUuid();
  std::string b2 = NewUuid();
  EXPECT_LE(a.substr(0, 13), b2.substr(0, 13));  // time-ordered prefix
}

}  // namespace
}  // namespace herald
