#include "delivery/retry_policy.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace herald::delivery {
namespace {

using std::chrono::milliseconds;

TEST(RetryPolicyTest, FullJitterDoublesUpToTheCap) {
  RetryPolicy p{milliseconds(1000), milliseconds(600000), 10};
  // The ceiling of the n-th retry is base * 2^(n-1), capped; draw 1.0 reaches it, 0.0 is zero.
  EXPECT_EQ(p.NextDelay(1, std::nullopt, 1.0), milliseconds(1000));
  EXPECT_EQ(p.NextDelay(2, std::nullopt, 1.0), milliseconds(2000));
  EXPECT_EQ(p.NextDelay(5, std::nullopt, 1.0), milliseconds(16000));
  EXPECT_EQ(p.NextDelay(9, std::nullopt, 1.0), milliseconds(256000));
  EXPECT_EQ(p.NextDelay(9, std::nullopt, 0.5), milliseconds(128000));
  EXPECT_EQ(p.NextDelay(3, std::nullopt, 0.0), milliseconds(0));
  RetryPolicy capped{milliseconds(1000), milliseconds(5000), 100};
  EXPECT_EQ(capped.NextDelay(60, std::nullopt, 1.0), milliseconds(5000));
}

TEST(RetryPolicyTest, GivesUpAfterMaxAttempts) {
  RetryPolicy p{milliseconds(10), milliseconds(100), 3};
  EXPECT_TRUE(p.NextDelay(2, std::nullopt, 0.5).has_value());
  EXPECT_FALSE(p.NextDelay(3, std::nullopt, 0.5).has_value());
  EXPECT_FALSE(p.NextDelay(3, milliseconds(5), 0.5).has_value());
}

TEST(RetryPolicyTest, RetryAfterSetsTheDelay) {
  RetryPolicy p{milliseconds(10), milliseconds(100), 5};
  EXPECT_EQ(p.NextDelay(1, milliseconds(3000), 0.1), milliseconds(3000));
  EXPECT_EQ(p.NextDelay(1, milliseconds(86400000), 0.1), milliseconds(3600000));
}

TEST(RetryPolicyTest, FromEnvironment) {
  setenv("HERALD_RETRY_BASE_MS", "50", 1);
  setenv("HERALD_RETRY_MAX_MS", "500", 1);
  setenv("HERALD_RETRY_ATTEMPTS", "3", 1);
  RetryPolicy p = RetryPolicy::FromEnvironment();
  EXPECT_EQ(p.base, milliseconds(50));
  EXPECT_EQ(p.cap, milliseconds(500));
  EXPECT_EQ(p.max_attempts, 3);
  setenv("HERALD_RETRY_ATTEMPTS", "zero", 1);
  EXPECT_EQ(RetryPolicy::FromEnvironment().max_attempts, 10);
  unsetenv("HERALD_RETRY_BASE_MS");
  unsetenv("HERALD_RETRY_MAX_MS");
  unsetenv("HERALD_RETRY_ATTEMPTS");
  EXPECT_EQ(RetryPolicy::FromEnvironment().base, milliseconds(1000));
}

}  // namespace
}  // namespace herald::delivery
