// herald_bench_h2mock: the counters behind GET /stats: the lock-free distinct sets (provider
// credentials, push keys), the route and status tables, and the per-thread Counters. The /stats
// JSON and POST /reset are Mock::Stats and Mock::Reset, in h2mock_stats.cc.

#pragma once

#include <sys/mman.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "bench/h2mock/h2mock_util.h"

namespace herald::bench {

// ---------------------------------------------------------------------------- distinct sets
// A fixed open-addressing set of 64-bit keys, lock-free (CAS on empty slots). It stops counting
// new keys at kMaxEntries (then `saturated`). Backed by an anonymous mapping: untouched pages cost
// nothing, and Clear() hands them back.
class DistinctSet {
 public:
  static constexpr std::size_t kSlots = std::size_t{1} << 21;
  static constexpr std::uint64_t kMaxEntries = 1'000'000;

  DistinctSet() {
    void* p = mmap(nullptr, kSlots * sizeof(std::uint64_t), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      std::perror("herald_bench_h2mock: mmap");
      std::exit(1);
    }
    slots_ = static_cast<std::atomic<std::uint64_t>*>(p);
  }
  ~DistinctSet() { munmap(slots_, kSlots * sizeof(std::uint64_t)); }
  DistinctSet(const DistinctSet&) = delete;
  DistinctSet& operator=(const DistinctSet&) = delete;

  // True if the key was not in the set (and is now).
  bool Insert(std::uint64_t key) {
    if (key == 0) key = 1;
    std::size_t i = Mix(key) & (kSlots - 1);
    for (;;) {
      std::uint64_t seen = slots_[i].load(std::memory_order_relaxed);
      if (seen == key) return false;
      if (seen == 0) {
        if (count_.load(std::memory_order_relaxed) >= kMaxEntries) {
          saturated_.store(true, std::memory_order_relaxed);
          return false;
        }
        if (slots_[i].compare_exchange_strong(seen, key, std::memory_order_relaxed)) {
          count_.fetch_add(1, std::memory_order_relaxed);
          return true;
        }
        if (seen == key) return false;
      }
      i = (i + 1) & (kSlots - 1);
    }
  }
  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  bool saturated() const { return saturated_.load(std::memory_order_relaxed); }
  // Not safe against concurrent inserts (POST /reset is for an idle mock).
  void Clear() {
    madvise(slots_, kSlots * sizeof(std::uint64_t), MADV_DONTNEED);
    count_.store(0);
    saturated_.store(false);
  }

 private:
  std::atomic<std::uint64_t>* slots_ = nullptr;
  std::atomic<std::uint64_t> count_{0};
  std::atomic<bool> saturated_{false};
};

// ---------------------------------------------------------------------------------- counters
enum Route : int {
  kApns = 0,
  kFcm,
  kToken,
  kWebPush,
  kPushRoutes,
  kStats = kPushRoutes,
  kReset,
  kUnknown,
  kNone
};
constexpr std::array<const char*, kPushRoutes> kRouteNames = {"apns", "fcm", "token", "webpush"};
constexpr std::array<int, 11> kStatuses = {100, 200, 201, 400, 401, 403, 404, 405, 411, 413, 431};

inline int StatusIndex(int status) {
  for (std::size_t i = 0; i < kStatuses.size(); ++i) {
    if (kStatuses[i] == status) return static_cast<int>(i);
  }
  return -1;
}

// One per worker thread, written only by it (a load and a store, no locked instruction), read by
// whichever thread serves /stats.
struct alignas(64) Counters {
  using C = std::atomic<std::uint64_t>;
  C requests{0}, accepted{0}, rejected{0};
  std::array<C, kPushRoutes> by_route{}, rejected_by_route{}, body_bytes{};
  std::array<C, kStatuses.size()> by_status{};
  C keyed_accepted{0};
  C connections{0}, push_connections{0}, h2_connections{0}, http1_connections{0}, closed{0};
  C h2_streams{0}, rst_stream_received{0}, goaway_received{0}, protocol_errors{0};
  std::atomic<std::int64_t> first_at_us{0}, last_at_us{0}, distinct_last_at_us{0};
  C seq{0};  // response numbers (FCM names, Web Push locations, apns-ids)

  static void Add(C& c, std::uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void Zero() {
    for (C* c : {&requests, &accepted, &rejected, &keyed_accepted, &connections, &push_connections,
                 &h2_connections, &http1_connections, &closed, &h2_streams, &rst_stream_received,
                 &goaway_received, &protocol_errors}) {
      c->store(0, std::memory_order_relaxed);
    }
    for (auto* group : {&by_route, &rejected_by_route, &body_bytes}) {
      for (C& c : *group) c.store(0, std::memory_order_relaxed);
    }
    for (C& c : by_status) c.store(0, std::memory_order_relaxed);
    first_at_us.store(0);
    last_at_us.store(0);
    distinct_last_at_us.store(0);
  }
};

}  // namespace herald::bench
