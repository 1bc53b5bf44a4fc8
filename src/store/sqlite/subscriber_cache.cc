// The planning subscriber cache: subscribers as trigger planning sees them, kept on the writer
// thread.
#include "store/sqlite/subscriber_cache.h"

namespace herald::store::sqlite {

// A subscriber as trigger planning sees it: without its tokens' last-active time and last
// failure, which deliveries rewrite all the time and planning never reads (see MessagePlanner).
Subscriber ForPlanning(Subscriber sub) {
  for (SubscriberChannel& channel : sub.channels) {
    for (DeviceToken& token : channel.tokens) {
      token.last_active_at.reset();
      token.last_failure_reason.reset();
    }
  }
  return sub;
}

std::shared_ptr<const Subscriber> SubscriberCache::Find(std::string_view env,
                                                        std::string_view subscriber_id) {
  auto it = entries_.find(Key(env, subscriber_id));
  return it == entries_.end() ? nullptr : it->second;
}

std::shared_ptr<const Subscriber> SubscriberCache::Put(Subscriber sub) {
  if (entries_.size() >= kMaxEntries) entries_.clear();
  sub.snapshot = next_snapshot_.fetch_add(1, std::memory_order_relaxed);
  auto entry = std::make_shared<const Subscriber>(std::move(sub));
  entries_[Key(entry->environment_id, entry->subscriber_id)] = entry;
  return entry;
}

std::string SubscriberCache::Key(std::string_view env, std::string_view subscriber_id) {
  std::string key(env);
  key += '\n';
  key += subscriber_id;
  return key;
}

}  // namespace herald::store::sqlite
