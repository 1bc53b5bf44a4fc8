// Stop signals for the long-running commands: SIGINT and SIGTERM are blocked in every thread and
// taken synchronously by the main thread, so no handler runs in a random thread.
#pragma once

#include <chrono>

namespace herald {

// Blocks SIGINT and SIGTERM for the calling thread and the threads it starts later, and ignores
// SIGPIPE (a peer closing a socket must not kill the process). Call before starting threads.
void BlockStopSignals();

// Waits for SIGINT or SIGTERM (blocked by BlockStopSignals) for at most `timeout`; returns the
// signal number, or 0 if none came in time.
int WaitForStopSignal(std::chrono::milliseconds timeout);
// Waits without a time limit.
int WaitForStopSignal();

}  // namespace herald
