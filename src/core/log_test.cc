#include "core/log.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <thread>

namespace herald {
namespace {

int OwnNice() { return getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())); }

TEST(LowerThreadPriority, RaisesOnlyTheCallingThreadsNiceValue) {
  int before = OwnNice();
  int in_thread = 0, after_in_thread = 0;
  std::thread t([&] {
    in_thread = OwnNice();
    LowerThreadPriority(3);
    after_in_thread = OwnNice();
  });
  t.join();
  EXPECT_EQ(after_in_thread, std::min(in_thread + 3, 19));
  EXPECT_EQ(OwnNice(), before);  // the caller's thread is untouched
  std::thread zero([&] {
    int start = OwnNice();
    LowerThreadPriority(0);
    EXPECT_EQ(OwnNice(), start);
  });
  zero.join();
}

}  // namespace
}  // namespace herald
