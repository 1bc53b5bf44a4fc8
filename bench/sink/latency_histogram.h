// A lock-free log-linear histogram of microsecond latencies: exact below 256 µs, then 128
// sub-buckets per power of two (relative error < 0.8 %). Record() is one relaxed atomic add.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstdint>

namespace herald::bench {

class LatencyHistogram {
 public:
  void Record(std::int64_t micros) {
    std::uint64_t v = micros < 0 ? 0 : static_cast<std::uint64_t>(micros);
    v = std::min(v, kMaxValue);
    buckets_[Index(v)].fetch_add(1, std::memory_order_relaxed);
    total_.fetch_add(1, std::memory_order_relaxed);
    std::uint64_t seen = max_.load(std::memory_order_relaxed);
    while (v > seen && !max_.compare_exchange_weak(seen, v, std::memory_order_relaxed)) {
    }
  }

  std::uint64_t count() const { return total_.load(std::memory_order_relaxed); }
  std::uint64_t max() const { return max_.load(std::memory_order_relaxed); }

  // The value at quantile q (0..1): the midpoint of the bucket holding the ceil(q * n)-th
  // smallest sample, capped at the exact maximum. 0 when empty.
  std::uint64_t Quantile(double q) const {
    std::uint64_t n = count();
    if (n == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(n) + 0.999999);
    rank = std::clamp<std::uint64_t>(rank, 1, n);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += buckets_[i].load(std::memory_order_relaxed);
      if (seen >= rank) return std::min(Midpoint(i), max());
    }
    return max();  // samples recorded concurrently with this scan
  }

  // Not atomic with respect to concurrent Record() calls; the sink resets between phases.
  void Reset() {
    for (auto& b : buckets_) b.store(0, std::memory_order_relaxed);
    total_.store(0, std::memory_order_relaxed);
    max_.store(0, std::memory_order_relaxed);
  }

 private:
  static constexpr int kSubBits = 7;
  static constexpr std::uint64_t kSub = 1u << kSubBits;
  static constexpr int kMaxExponent = 40;  // ~12.7 days in µs
  static constexpr std::uint64_t kMaxValue = (std::uint64_t{1} << (kMaxExponent + 1)) - 1;
  static constexpr std::size_t kBuckets = (kMaxExponent - kSubBits + 2) * kSub;

  static std::size_t Index(std::uint64_t v) {
    if (v < 2 * kSub) return v;
    int exponent = std::bit_width(v) - 1;                 // >= kSubBits + 1
    std::uint64_t mantissa = v >> (exponent - kSubBits);  // in [kSub, 2 * kSub)
    return (exponent - kSubBits + 1) * kSub + (mantissa - kSub);
  }

  static std::uint64_t Midpoint(std::size_t index) {
    if (index < 2 * kSub) return index;
    int exponent = static_cast<int>(index / kSub) + kSubBits - 1;
    std::uint64_t mantissa = kSub + index % kSub;
    int shift = exponent - kSubBits;
    return (mantissa << shift) + ((std::uint64_t{1} << shift) >> 1);
  }

  std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
  std::atomic<std::uint64_t> total_{0};
  std::atomic<std::uint64_t> max_{0};
};

}  // namespace herald::bench
