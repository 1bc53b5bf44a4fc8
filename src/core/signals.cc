#include "core/signals.h"

#include <signal.h>

#include <ctime>

namespace herald {
namespace {

sigset_t StopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  return signals;
}

}  // namespace

void BlockStopSignals() {
  sigset_t signals = StopSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int WaitForStopSignal(std::chrono::milliseconds timeout) {
  sigset_t signals = StopSignals();
  timespec wait{static_cast<time_t>(timeout.count() / 1000),
                static_cast<long>((timeout.count() % 1000) * 1000000)};
  int received = sigtimedwait(&signals, nullptr, &wait);
  return received > 0 ? received : 0;
}

int WaitForStopSignal() {
  sigset_t signals = StopSignals();
  int received = 0;
  sigwait(&signals, &received);
  return received;
}

}  // namespace herald
