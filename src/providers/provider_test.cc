#include "providers/provider.h"

#include <gtest/gtest.h>

namespace herald::providers {
namespace {

TEST(RetryAfterTest, DeltaSecondsAndHttpDate) {
  EXPECT_EQ(ParseRetryAfter("120", 0)->count(), 120000);
  EXPECT_EQ(ParseRetryAfter(" 0 ", 0)->count(), 0);
  EXPECT_FALSE(ParseRetryAfter("-1", 0).has_value());
  EXPECT_FALSE(ParseRetryAfter("soon", 0).has_value());
  EXPECT_FALSE(ParseRetryAfter("", 0).has_value());
  // 1994-11-06T08:49:37Z = 784111777 s.
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", 784111777000 - 5000)->count(), 5000);
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", 784111777000 + 5000)->count(), 0);
  // The obsolete forms recipients must accept, and zero numeric zones.
  for (const char* same : {"Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
                           "Sun, 06 Nov 1994 08:49:37 +0000", "Sun, 06 Nov 1994 08:49:37 -0000",
                           "Sun, 06 Nov 1994 08:49:37 UTC"}) {
    auto delay = ParseRetryAfter(same, 784111777000 - 5000);
    ASSERT_TRUE(delay.has_value()) << same;
    EXPECT_EQ(delay->count(), 5000) << same;
  }
  for (const char* bad : {"Sun, 06 Nov 1994 08:49:37", "Sun, 06 Nov 1994 08:49:37 CET",
                          "Sun, 06 Nov 1994 08:49:37 GMT extra", "06 Nov 1994"}) {
    EXPECT_FALSE(ParseRetryAfter(bad, 0).has_value()) << bad;
  }
}

TEST(ClassifyTest, StatusTable) {
  struct Row {
    int status;
    Verdict verdict;
  } rows[] = {{200, Verdict::kDelivered}, {201, Verdict::kDelivered}, {299, Verdict::kDelivered},
              {400, Verdict::kFailed},    {401, Verdict::kFailed},    {403, Verdict::kFailed},
              {408, Verdict::kRetry},     {410, Verdict::kFailed},    {429, Verdict::kRetry},
              {500, Verdict::kRetry},     {502, Verdict::kRetry},     {503, Verdict::kRetry}};
  for (const Row& row : rows) {
    http::Response r;
    r.status = row.status;
    EXPECT_EQ(ClassifyHttpStatus(r).verdict, row.verdict) << row.status;
  }
}

TEST(ClassifyTest, TransportErrors) {
  using E = http::TransportError;
  struct Row {
    E error;
    Verdict verdict;
  } rows[] = {{E::kTimeout, Verdict::kRetry},
              {E::kConnect, Verdict::kRetry},
              {E::kDns, Verdict::kRetry},
              {E::kProtocol, Verdict::kRetry},
              {E::kTlsHandshake, Verdict::kRetry},
              {E::kTls, Verdict::kFailedConfig},
              {E::kBadRequest, Verdict::kFailedConfig},
              {E::kForbiddenTarget, Verdict::kFailedConfig}};
  for (const Row& row : rows) {
    http::Outcome o;
    o.error = row.error;
    EXPECT_EQ(ClassifyTransport(o).verdict, row.verdict) << http::TransportErrorName(row.error);
  }
}

}  // namespace
}  // namespace herald::providers
