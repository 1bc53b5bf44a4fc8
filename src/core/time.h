// Wall-clock time as Herald stores and prints it: integer milliseconds since the Unix epoch,
// rendered as ISO 8601 UTC with milliseconds ("2024-01-01T00:00:00.000Z"), as Novu does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herald {

using EpochMs = std::int64_t;

EpochMs NowMs();
std::string IsoTime(EpochMs ms);
// Parses the form IsoTime() writes (and the same without milliseconds). nullopt if malformed.
std::optional<EpochMs> ParseIsoTime(std::string_view text);
// Parses the ISO 8601 forms a client may send as a date filter: a date alone (midnight UTC),
// or a date and time with optional fraction and a zone of Z, +HH:MM or -HH:MM (none = UTC).
std::optional<EpochMs> ParseTimestamp(std::string_view text);

}  // namespace herald
