#include "delivery/retry_policy.h"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace herald::delivery {
namespace {

long long EnvInt(const char* name, long long fallback, long long min, long long max) {
  const char* raw = std::getenv(name);
  if (!raw || !*raw) return fallback;
  char* end = nullptr;
  long long value = std::strtoll(raw, &end, 10);
  if (*end != '\0' || value < min || value > max) return fallback;
  return value;
}

}  // namespace

RetryPolicy RetryPolicy::FromEnvironment(std::string_view prefix, const RetryPolicy& defaults) {
  auto name = [&](const char* suffix) { return std::string(prefix) + suffix; };
  RetryPolicy policy;
  policy.base = std::chrono::milliseconds(
      EnvInt(name("_BASE_MS").c_str(), defaults.base.count(), 1, 3600000));
  policy.cap = std::chrono::milliseconds(
      EnvInt(name("_MAX_MS").c_str(), defaults.cap.count(), 1, 86400000));
  policy.max_attempts =
      static_cast<int>(EnvInt(name("_ATTEMPTS").c_str(), defaults.max_attempts, 1, 1000));
  return policy;
}

std::optional<std::chrono::milliseconds> RetryPolicy::NextDelay(
    int attempts_done, std::optional<std::chrono::milliseconds> retry_after, double draw) const {
  if (attempts_done >= max_attempts) return std::nullopt;
  if (retry_after) return std::min(*retry_after, std::chrono::milliseconds(3600000));
  int exponent = std::clamp(attempts_done - 1, 0, 40);
  double ceiling =
      std::min(static_cast<double>(cap.count()),
               static_cast<double>(base.count()) * static_cast<double>(1ULL << exponent));
  return std::chrono::milliseconds(static_cast<long long>(std::clamp(draw, 0.0, 1.0) * ceiling));
}

}  // namespace herald::delivery
