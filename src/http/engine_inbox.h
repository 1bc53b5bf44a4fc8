// What both engines share: the part other threads touch. New requests and limit changes go into
// a mutex-guarded inbox and wake the I/O thread through an eventfd; the in-flight count lets
// Shutdown wait for the last completion; Send, SetConcurrency, InFlight, Shutdown and the Engine
// hooks are built on them. Everything else belongs to the engine's I/O thread. Internal to
// src/http.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "http/engine.h"

namespace herald::http {

inline constexpr const char* kShutdownMessage = "http client is shutting down";

// Runs a request's callback on the calling thread; an exception it throws is logged, not thrown.
void DeliverOutcome(const Callback& done, Outcome outcome);

// Logs a Shutdown called from one of the engine's own callbacks (it only begins the stop).
void LogShutdownFromCallback(const char* engine);

// Transfer: the engine's record of one request, with members `request` and `done`.
template <class Transfer>
class InboxEngine : public Engine {
 public:
  void Send(Request request, Callback done) override {
    auto transfer = std::make_unique<Transfer>();
    transfer->request = std::move(request);
    transfer->done = std::move(done);
    {
      std::lock_guard lock(mu_);
      if (accepting_) {
        inbox_.push_back(std::move(transfer));
        ++in_flight_;
        WakeLocked();
        return;
      }
    }
    DeliverOutcome(transfer->done, Outcome{TransportError::kShutdown, kShutdownMessage, {}});
  }

  void SetConcurrency(const std::string& key, std::size_t limit) override {
    std::lock_guard lock(mu_);
    limit_updates_.emplace_back(key, std::max<std::size_t>(1, limit));
    WakeLocked();
  }

  std::size_t InFlight() const override {
    std::lock_guard lock(mu_);
    return in_flight_;
  }

  void StopAccepting() override {
    std::lock_guard lock(mu_);
    accepting_ = false;
  }

  void BeginShutdown() override {
    std::lock_guard lock(mu_);
    accepting_ = false;
    stop_ = true;
    WakeLocked();
  }

  void Shutdown(std::chrono::milliseconds grace) override {
    if (OnIoThread()) {
      LogShutdownFromCallback(name_);
      BeginShutdown();
      return;
    }
    std::lock_guard shutdown_lock(shutdown_mu_);
    if (!io_thread_.joinable()) return;
    {
      std::unique_lock lock(mu_);
      accepting_ = false;
      idle_cv_.wait_for(lock, grace, [this] { return in_flight_ == 0; });
      stop_ = true;
      WakeLocked();
    }
    io_thread_.join();
  }

  bool OnIoThread() const override { return std::this_thread::get_id() == io_thread_id_; }

 protected:
  explicit InboxEngine(const char* name) : name_(name) {}

  // Starts the I/O thread running `run`; once, from the engine's constructor.
  template <class Run>
  void StartIoThread(Run run) {
    io_thread_ = std::thread(std::move(run));
    io_thread_id_ = io_thread_.get_id();
  }

  // One request is done: Shutdown stops waiting once none is left.
  void CountFinished() {
    std::lock_guard lock(mu_);
    if (--in_flight_ == 0) idle_cv_.notify_all();
  }

  // With mu_ held: wakes the I/O thread unless a wake-up is already pending.
  void WakeLocked() {
    if (wake_pending_ || wake_fd_ < 0) return;
    wake_pending_ = true;
    std::uint64_t one = 1;
    ssize_t written = write(wake_fd_, &one, sizeof one);  // fails only if the counter is full
    (void)written;
  }

  int wake_fd_ = -1;  // the engine creates it (eventfd) and closes it

  // Guarded by mu_.
  mutable std::mutex mu_;
  std::condition_variable idle_cv_;
  std::vector<std::unique_ptr<Transfer>> inbox_;
  std::vector<std::pair<std::string, std::size_t>> limit_updates_;
  std::size_t in_flight_ = 0;
  bool accepting_ = true;
  bool stop_ = false;
  bool wake_pending_ = false;

 private:
  const char* name_;
  std::mutex shutdown_mu_;
  std::thread io_thread_;
  std::thread::id io_thread_id_;
};

}  // namespace herald::http
