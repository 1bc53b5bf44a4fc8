// The planning subscriber cache: the subscribers trigger planning reads, kept on the writer
// thread while they do not change. Used only inside store/sqlite/.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "store/model.h"

namespace herald::store::sqlite {

// A subscriber as trigger planning sees it: without its tokens' last-active time and last
// failure, which deliveries rewrite all the time and planning never reads (see MessagePlanner).
Subscriber ForPlanning(Subscriber sub);

// Subscribers as trigger planning sees them (ForPlanning), by environment and subscriberId, so
// that a subscriber who gets one notification after another is not read and copied for each. Used
// on the writer thread only, and kept in step with the database by clearing: the store clears it
// after every write that may change what it holds and whenever planning rolls back, and the writer
// after a rolled-back batch, so an entry never outlives the data it was read from. Each entry is a
// fresh snapshot number (see Subscriber::snapshot), unique in the process.
class SubscriberCache {
 public:
  std::shared_ptr<const Subscriber> Find(std::string_view env, std::string_view subscriber_id);

  std::shared_ptr<const Subscriber> Put(Subscriber sub);

  void Clear() { entries_.clear(); }

 private:
  static constexpr std::size_t kMaxEntries = 20000;
  static std::string Key(std::string_view env, std::string_view subscriber_id);

  std::unordered_map<std::string, std::shared_ptr<const Subscriber>> entries_;
  // Shared by every store of the process: a planner may outlive one store and meet the same
  // subscriber through another.
  static inline std::atomic<std::uint64_t> next_snapshot_{1};
};

// Clears `cache` when it goes out of scope (also when the write it guards fails or throws),
// unless it was built with `clear` false or Keep() was called.
class ClearAfter {
 public:
  explicit ClearAfter(SubscriberCache& cache, bool clear = true)
      : cache_(clear ? &cache : nullptr) {}
  ~ClearAfter() {
    if (cache_) cache_->Clear();
  }
  ClearAfter(const ClearAfter&) = delete;
  ClearAfter& operator=(const ClearAfter&) = delete;
  void Keep() { cache_ = nullptr; }

 private:
  SubscriberCache* cache_;
};

}  // namespace herald::store::sqlite
