// Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
// Jitter"): the n-th retry waits a uniform random time in [0, min(cap, base * 2^(n-1))]. A
// provider's Retry-After replaces the computed delay for that retry.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string_view>

namespace herald::delivery {

struct RetryPolicy {
  std::chrono::milliseconds base{1000};
  std::chrono::milliseconds cap{600000};
  int max_attempts = 10;  // attempts in all, the first one included

  // Reads <prefix>_BASE_MS, <prefix>_MAX_MS and <prefix>_ATTEMPTS (HERALD_RETRY_BASE_MS, ...)
  // over `defaults`.
  static RetryPolicy FromEnvironment(std::string_view prefix, const RetryPolicy& defaults);
  static RetryPolicy FromEnvironment() { return FromEnvironment("HERALD_RETRY", RetryPolicy{}); }

  // Delay before the next attempt after `attempts_done` attempts, or nullopt if no attempt is
  // left. `draw` is a uniform random number in [0, 1).
  std::optional<std::chrono::milliseconds> NextDelay(
      int attempts_done, std::optional<std::chrono::milliseconds> retry_after, double draw) const;
};

}  // namespace herald::delivery
