// Logging: spdlog behind one set-up call. Messages are structured as `event key=value ...`;
// never pass a secret (API key, credential, token) to a log call.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace herald {

// Level names: trace, debug, info, warn, error. Unknown names fall back to info.
void InitLogging(std::string_view level);

}  // namespace herald

namespace herald {
// Names the calling thread (shown by top -H, perf and gdb); at most 15 characters.
void SetThreadName(const char* name);
// Raises the calling thread's nice value by `nice` (0: no change). Background threads use it to
// leave the CPU to latency-sensitive ones when both want it.
void LowerThreadPriority(int nice);
}  // namespace herald
