// Topics and their subscriptions (topics.cc).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store/sqlite/store_test_util.h"

namespace herald::store::sqlite {
namespace {

TEST_P(SqliteStoreTest, TopicSubscriptions) {
  MustUpsert(dev_, "u1");
  MustUpsert(dev_, "u2");
  auto added = store_->AddTopicSubscribers(dev_, "news", {"u1", "u2", "ghost"});
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(added->succeeded.size(), 2u);
  EXPECT_EQ(added->missing_subscribers, std::vector<std::string>{"ghost"});
  EXPECT_TRUE(store_->GetTopic(dev_, "news").ok());
  EXPECT_EQ(store_->GetTopic(prod_, "news").status().code(), Code::kNotFound);
  // Idempotent.
  ASSERT_TRUE(store_->AddTopicSubscribers(dev_, "news", {"u1"}).ok());
  auto list = store_->ListTopicSubscriptions(dev_, "news", std::nullopt, {});
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->total_count, 2);
  EXPECT_EQ(store_->GetSubscriber(dev_, "u1")->topics, std::vector<std::string>{"news"});
  auto removed = store_->RemoveTopicSubscribers(dev_, "news", {"u1"});
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed->succeeded.size(), 1u);
  list = store_->ListTopicSubscriptions(dev_, "news", std::nullopt, {});
  EXPECT_EQ(list->total_count, 1);
  bool created = true;
  Topic t;
  t.environment_id = dev_;
  t.key = "news";
  EXPECT_EQ(store_->UpsertTopic(t, true, &created).status().code(), Code::kConflict);
}

}  // namespace
}  // namespace herald::store::sqlite
