#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace herald {

void InitLogging(std::string_view level) {
  auto logger = spdlog::stderr_color_mt("herald");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  auto parsed = spdlog::level::from_str(std::string(level));
  logger->set_level(parsed == spdlog::level::off && level != "off" ? spdlog::level::info : parsed);
  spdlog::set_default_logger(logger);
}

}  // namespace herald

#include <pthread.h>

namespace herald {
void SetThreadName(const char* name) { pthread_setname_np(pthread_self(), name); }

void LowerThreadPriority(int nice) {
  if (nice <= 0) return;
  // On Linux a nice value belongs to the thread (its tid), not to the whole process.
  auto tid = static_cast<id_t>(gettid());
  errno = 0;
  int current = getpriority(PRIO_PROCESS, tid);  // -1 is a valid answer: errno tells
  if (errno != 0) current = 0;
  if (setpriority(PRIO_PROCESS, tid, std::min(current + nice, 19)) != 0) {
    spdlog::warn("cannot lower thread priority: {}", std::strerror(errno));
  }
}
}  // namespace herald
