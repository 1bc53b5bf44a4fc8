#include "core/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <set>
#include <thread>

namespace herald {
namespace {

TEST(WorkerPool, RunsEveryTaskOffTheCallersThreadAndDrainsOnDestruction) {
  std::atomic<int> ran{0};
  std::mutex mu;
  std::set<std::thread::id> where;
  {
    WorkerPool pool(2, "test-pool");
    for (int i = 0; i < 100; ++i) {
      pool.Post([&] {
        std::lock_guard lock(mu);
        where.insert(std::this_thread::get_id());
        ++ran;
      });
    }
    pool.Post([] { throw std::runtime_error("a task that throws"); });  // logged, not fatal
  }  // the destructor runs what is queued
  EXPECT_EQ(ran.load(), 100);
  EXPECT_EQ(where.count(std::this_thread::get_id()), 0u);
  EXPECT_LE(where.size(), 2u);
}

TEST(WorkerPool, ABlockedTaskDoesNotHoldBackTheOthers) {
  WorkerPool pool(2, "test-pool");
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  pool.Post([gate] { gate.wait(); });  // occupies one thread
  std::promise<int> other;
  pool.Post([&] { other.set_value(7); });
  EXPECT_EQ(other.get_future().get(), 7);  // served by the second thread meanwhile
  release.set_value();
}

}  // namespace
}  // namespace herald
