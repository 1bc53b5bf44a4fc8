// Identifiers and randomness from the kernel's CSPRNG (getrandom), usable from any layer.
#pragma once

#include <cstddef>
#include <string>

namespace herald {

// `n` bytes from getrandom(2). Aborts if the kernel cannot supply them (never on Linux >= 3.17).
std::string RandomBytes(std::size_t n);

// A 24-hex-digit MongoDB-style ObjectId (seconds, per-process random, counter): ids from one
// process sort by creation, and look familiar to Novu clients.
std::string NewObjectId();

// `n` random characters from [0-9a-z], e.g. for identifier suffixes.
std::string RandomAlnum(std::size_t n);

// A UUID version 7 (time-ordered, RFC 9562) in canonical lowercase form.
std::string NewUuid();

}  // namespace herald
