// Workflows (workflows.cc).
#include <gtest/gtest.h>

#include <string>

#include "store/sqlite/store_test_util.h"

namespace herald::store::sqlite {
namespace {

TEST_P(SqliteStoreTest, WorkflowsCrud) {
  Workflow w;
  w.id = NewObjectId();
  w.environment_id = dev_;
  w.workflow_id = "order-shipped";
  w.name = "Order shipped";
  w.active = true;
  w.steps.push_back(
      {NewObjectId(), "push", "Push", "push", {{"title", "Hi {{subscriber.firstName}}"}}});
  w.created_at = w.updated_at = NowMs();
  ASSERT_TRUE(store_->CreateWorkflow(w).ok());
  EXPECT_EQ(store_->CreateWorkflow(w).status().code(), Code::kConflict);
  auto got = store_->GetWorkflow(dev_, "order-shipped");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->steps[0].control_values["title"], "Hi {{subscriber.firstName}}");
  EXPECT_TRUE(store_->GetWorkflow(dev_, w.id).ok());
  long long total = 0;
  auto list = store_->ListWorkflows(dev_, 0, 10, std::string("shipped"), &total);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(total, 1);
  w.name = "Renamed";
  ASSERT_TRUE(store_->UpdateWorkflow(w).ok());
  EXPECT_EQ(store_->GetWorkflow(dev_, "order-shipped")->name, "Renamed");
  EXPECT_TRUE(store_->DeleteWorkflow(dev_, "order-shipped").ok());
  EXPECT_EQ(store_->GetWorkflow(dev_, "order-shipped").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace herald::store::sqlite
