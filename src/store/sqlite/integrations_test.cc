// Environments and integrations (integrations.cc).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "store/sqlite/store_test_util.h"

namespace herald::store::sqlite {
namespace {

TEST_P(SqliteStoreTest, IntegrationsAreScopedSealedAndUnique) {
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(dev_, "hook")).ok());
  auto dup = store_->CreateIntegration(MakeIntegration(dev_, "hook"));
  EXPECT_EQ(dup.status().code(), Code::kConflict);
  // The same identifier in another environment is fine; lists never cross environments.
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(prod_, "hook")).ok());
  auto dev_list = store_->ListIntegrations(dev_, false);
  ASSERT_TRUE(dev_list.ok());
  ASSERT_EQ(dev_list->size(), 1u);
  EXPECT_EQ((*dev_list)[0].credentials["secretKey"], "TOP-SECRET-VALUE");
  EXPECT_EQ((*dev_list)[0].environment_id, dev_);

  // The database file never holds the secret in clear.
  store_.reset();
  for (const char* name : {"herald.db", "herald.db-wal"}) {
    std::ifstream in(dir_ / name, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    EXPECT_EQ(bytes.str().find("TOP-SECRET-VALUE"), std::string::npos) << name;
  }
  Open();
  auto reopened = store_->ListIntegrations(dev_, false);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)[0].credentials["secretKey"], "TOP-SECRET-VALUE");
}

TEST_P(SqliteStoreTest, WrongKeyCannotOpenCredentials) {
  ASSERT_TRUE(store_->CreateIntegration(MakeIntegration(dev_, "hook")).ok());
  crypto::KeyRing other{"k2", {{"k2", std::string(32, 'z')}}};
  store_.reset();
  auto opened = OpenSqliteStore(Options(1), other);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ((*opened)->ListIntegrations(dev_, false).status().code(), Code::kInternal);
}

TEST_P(SqliteStoreTest, UpdateAndDeleteIntegration) {
  Integration i = MakeIntegration(dev_, "hook");
  ASSERT_TRUE(store_->CreateIntegration(i).ok());
  i.name = "renamed";
  i.active = false;
  ASSERT_TRUE(store_->UpdateIntegration(i).ok());
  auto got = store_->GetIntegration(dev_, i.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->name, "renamed");
  EXPECT_FALSE(got->active);
  EXPECT_EQ(store_->GetIntegration(prod_, i.id).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->DeleteIntegration(prod_, i.id).code(), Code::kNotFound);
  EXPECT_TRUE(store_->DeleteIntegration(dev_, i.id).ok());
  EXPECT_EQ(store_->GetIntegration(dev_, i.id).status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace herald::store::sqlite
