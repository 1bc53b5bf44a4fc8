#include "core/time.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace herald {

EpochMs NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string IsoTime(EpochMs ms) {
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  int millis = static_cast<int>(ms % 1000);
  if (millis < 0) {
    millis += 1000;
    --seconds;
  }
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

std::optional<EpochMs> ParseIsoTime(std::string_view text) {
  int y, mo, d, h, mi, s, ms = 0;
  std::string copy(text);
  int consumed = 0;
  if (std::sscanf(copy.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &consumed) !=
      6) {
    return std::nullopt;
  }
  std::string_view rest = std::string_view(copy).substr(static_cast<std::size_t>(consumed));
  if (!rest.empty() && rest[0] == '.') {
    int digits = 0;
    std::size_t i = 1;
    while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') {
      if (digits < 3) ms = ms * 10 + (rest[i] - '0'), ++digits;
      ++i;
    }
    while (digits++ < 3) ms *= 10;
    rest.remove_prefix(i);
  }
  if (rest != "Z") return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<EpochMs>(timegm(&tm)) * 1000 + ms;
}

std::optional<EpochMs> ParseTimestamp(std::string_view text) {
  auto digits = [&](std::size_t from, std::size_t n) {
    if (text.size() < from + n) return false;
    for (std::size_t i = from; i < from + n; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
    }
    return true;
  };
  if (text.size() == 10 && digits(0, 4) && text[4] == '-' && digits(5, 2) && text[7] == '-' &&
      digits(8, 2)) {
    return ParseIsoTime(std::string(text) + "T00:00:00Z");
  }
  if (text.size() < 19 || text[10] != 'T') return std::nullopt;
  if (text.back() == 'Z') return ParseIsoTime(text);
  // A numeric offset: the local time minus the offset is UTC.
  const std::size_t zone = text.size() - 6;
  if (text.size() >= 25 && (text[zone] == '+' || text[zone] == '-') && digits(zone + 1, 2) &&
      text[zone + 3] == ':' && digits(zone + 4, 2)) {
    std::optional<EpochMs> local = ParseIsoTime(std::string(text.substr(0, zone)) + "Z");
    if (!local) return std::nullopt;
    int hours = (text[zone + 1] - '0') * 10 + (text[zone + 2] - '0');
    int minutes = (text[zone + 4] - '0') * 10 + (text[zone + 5] - '0');
    if (hours > 23 || minutes > 59) return std::nullopt;
    EpochMs offset = (static_cast<EpochMs>(hours) * 60 + minutes) * 60 * 1000;
    return text[zone] == '+' ? *local - offset : *local + offset;
  }
  return ParseIsoTime(std::string(text) + "Z");
}

}  // namespace herald
