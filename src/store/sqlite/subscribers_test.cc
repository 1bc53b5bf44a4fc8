// Subscribers and their device tokens (subscribers.cc), and cursor pages (paging.cc).
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "store/sqlite/store_test_util.h"

namespace herald::store::sqlite {
namespace {

TEST_P(SqliteStoreTest, SubscriberUpsertPatchDelete) {
  bool created = false;
  SubscriberPatch p;
  p.email = std::optional<std::string>("a@example.com");
  p.data = std::optional<Json>(Json{{"plan", "pro"}});
  auto sub = store_->UpsertSubscriber(dev_, "u1", p, false, &created);
  ASSERT_TRUE(sub.ok());
  EXPECT_TRUE(created);
  EXPECT_EQ(store_->UpsertSubscriber(dev_, "u1", {}, true, &created).status().code(),
            Code::kConflict);
  SubscriberPatch patch;
  patch.email = std::optional<std::string>();  // clear
  patch.last_name = std::optional<std::string>("Lee");
  auto patched = store_->PatchSubscriber(dev_, "u1", patch);
  ASSERT_TRUE(patched.ok());
  EXPECT_FALSE(patched->profile.email.has_value());
  EXPECT_EQ(patched->profile.last_name, "Lee");
  EXPECT_EQ((*patched->profile.data)["plan"], "pro");
  EXPECT_EQ(store_->GetSubscriber(prod_, "u1").status().code(), Code::kNotFound);
  EXPECT_TRUE(store_->DeleteSubscriber(dev_, "u1").ok());
  EXPECT_EQ(store_->DeleteSubscriber(dev_, "u1").code(), Code::kNotFound);
}

TEST_P(SqliteStoreTest, CredentialsReplaceAppendDedupeAndLimit) {
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(dev_, "hook")).ok());
  MustUpsert(dev_, "u1");
  CredentialsUpdate put{"push-webhook",
                        std::nullopt,
                        Tokens({"a", "b"}),
                        std::nullopt,
                        std::nullopt,
                        TokenWriteMode::kReplace,
                        3};
  auto s1 = store_->UpdateCredentials(dev_, "u1", put);
  ASSERT_TRUE(s1.ok()) << s1.status().message();
  EXPECT_EQ(ActiveTokens(*s1), (std::vector<std::string>{"a", "b"}));
  EpochMs a_created = s1->channels[0].tokens[0].created_at;

  CredentialsUpdate patch = put;
  patch.mode = TokenWriteMode::kAppend;
  patch.tokens = Tokens({"b", "c"});
  auto s2 = store_->UpdateCredentials(dev_, "u1", patch);
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(ActiveTokens(*s2), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(s2->channels[0].tokens[0].created_at, a_created);

  patch.tokens = Tokens({"d"});  // would make 4 > limit 3: rejected, nothing changes
  auto over = store_->UpdateCredentials(dev_, "u1", patch);
  EXPECT_EQ(over.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ActiveTokens(*store_->GetSubscriber(dev_, "u1")),
            (std::vector<std::string>{"a", "b", "c"}));

  put.tokens = Tokens({"z"});
  auto s3 = store_->UpdateCredentials(dev_, "u1", put);
  ASSERT_TRUE(s3.ok());
  EXPECT_EQ(ActiveTokens(*s3), (std::vector<std::string>{"z"}));

  EXPECT_TRUE(store_->DeleteCredentials(dev_, "u1", "push-webhook").ok());
  EXPECT_TRUE(store_->GetSubscriber(dev_, "u1")->channels.empty());
}

TEST_P(SqliteStoreTest, ChannelsLoadInCreationOrderWithTokensInPositionOrder) {
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(dev_, "hook")).ok());
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(dev_, "other", "push-webhook")).ok());
  MustUpsert(dev_, "u1");
  CredentialsUpdate first{"push-webhook",
                          std::string("hook"),
                          Tokens({"t3", "t1", "t2"}),
                          std::nullopt,
                          std::nullopt,
                          TokenWriteMode::kReplace,
                          10};
  ASSERT_TRUE(store_->UpdateCredentials(dev_, "u1", first).ok());
  // A channel with no tokens at all (only a webhook URL) still loads, after the first one.
  CredentialsUpdate second{"push-webhook",
                           std::string("other"),
                           std::vector<DeviceToken>{},
                           std::string("https://example.com/chat"),
                           std::nullopt,
                           TokenWriteMode::kReplace,
                           10};
  ASSERT_TRUE(store_->UpdateCredentials(dev_, "u1", second).ok());
  auto sub = store_->GetSubscriber(dev_, "u1");
  ASSERT_TRUE(sub.ok());
  ASSERT_EQ(sub->channels.size(), 2u);
  EXPECT_EQ(sub->channels[0].integration_identifier, "hook");
  EXPECT_EQ(ActiveTokens(*sub, 0), (std::vector<std::string>{"t3", "t1", "t2"}));
  EXPECT_EQ(sub->channels[1].integration_identifier, "other");
  EXPECT_TRUE(sub->channels[1].tokens.empty());
  EXPECT_EQ(sub->channels[1].webhook_url, std::optional<std::string>("https://example.com/chat"));
}

TEST_P(SqliteStoreTest, CredentialsResolveNewestActiveOrIdentifier) {
  ASSERT_TRUE(
      store_->CreateIntegration(MakeIntegration(dev_, "old", "push-webhook", true, 1000)).ok());
  ASSERT_TRUE(
      store_->CreateIntegration(MakeIntegration(dev_, "new", "push-webhook", true, 2000)).ok());
  ASSERT_TRUE(
      store_->CreateIntegration(MakeIntegration(dev_, "off", "push-webhook", false, 3000)).ok());
  MustUpsert(dev_, "u1");
  CredentialsUpdate u{"push-webhook",           std::nullopt, Tokens({"t"}), {}, {},
                      TokenWriteMode::kReplace, 100};
  auto s = store_->UpdateCredentials(dev_, "u1", u);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->channels[0].integration_identifier, "new");
  u.integration_identifier = "old";
  s = store_->UpdateCredentials(dev_, "u1", u);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->channels.size(), 2u);
  u.integration_identifier = "off";
  EXPECT_EQ(store_->UpdateCredentials(dev_, "u1", u).status().code(), Code::kInvalidArgument);
  u.integration_identifier.reset();
  u.provider_id = "fcm";
  EXPECT_EQ(store_->UpdateCredentials(dev_, "u1", u).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->UpdateCredentials(dev_, "nobody", u).status().code(), Code::kInvalidArgument);
  // Deleting an integration removes the channels bound to it.
  auto ints = store_->ListIntegrations(dev_, false);
  for (const Integration& i : *ints) {
    if (i.identifier == "new") {
      ASSERT_TRUE(store_->DeleteIntegration(dev_, i.id).ok());
    }
  }
  EXPECT_EQ(store_->GetSubscriber(dev_, "u1")->channels.size(), 1u);
}

TEST_P(SqliteStoreTest, SearchPagesWithCursors) {
  for (int i = 0; i < 5; ++i) MustUpsert(dev_, "s" + std::to_string(i));
  MustUpsert(prod_, "other");
  PageRequest page;
  page.limit = 2;
  page.descending = false;
  std::vector<std::string> seen;
  for (int guard = 0; guard < 10; ++guard) {
    auto result = store_->SearchSubscribers(dev_, {}, page);
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(result->total_count, 5);
    for (const Subscriber& s : result->items) seen.push_back(s.subscriber_id);
    if (!result->next) break;
    page.after = result->next;
  }
  EXPECT_EQ(seen.size(), 5u);
  std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), 5u);

  // A `before` page walks back: the two items just before the last cursor (seen[3]).
  PageRequest back;
  back.limit = 2;
  back.descending = false;
  back.before = page.after;
  auto previous = store_->SearchSubscribers(dev_, {}, back);
  ASSERT_TRUE(previous.ok());
  ASSERT_EQ(previous->items.size(), 2u);
  EXPECT_EQ(previous->items[0].subscriber_id, seen[1]);
  EXPECT_EQ(previous->items[1].subscriber_id, seen[2]);
  EXPECT_TRUE(previous->next.has_value());

  SubscriberFilter f;
  f.subscriber_id = "s3";
  auto one = store_->SearchSubscribers(dev_, f, {});
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->items.size(), 1u);
  EXPECT_FALSE(one->next.has_value());
}

}  // namespace
}  // namespace herald::store::sqlite
