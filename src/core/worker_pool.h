// A few threads for work that may block (synchronous store calls), so that the threads running
// event loops never wait on it.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace herald {

class WorkerPool {
 public:
  // `name` names the threads (at most 15 characters).
  WorkerPool(int threads, const char* name);
  ~WorkerPool();  // runs what is queued, then joins
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void Post(std::function<void()> task);

 private:
  void Loop(const char* name);

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;  // last: start after the members they use
};

}  // namespace herald
