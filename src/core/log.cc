#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

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
}  // namespace herald
