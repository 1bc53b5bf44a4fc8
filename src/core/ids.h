// Identifiers and randomness from the kernel's CSPRNG (getrandom), usable from any layer.
#pragma once

#include <cstddef>
#include <string>

namespace herald {

// `n` bytes from getrandom(2). Aborts if the kernel cannot supply them (never on Linux >= 3.17).
std::string RandomBytes(std::size_t n);

// A 24-hex-digit id shaped like a MongoDB ObjectId (4-byte seconds prefix, then random), so ids
// sort roughly by creation time and look familiar to Novu clients.
std::string NewObjectId();

// `n` random characters from [0-9a-z], e.g. for identifier suffixes.
std::string RandomAlnum(std::size_t n);

// A UUID version 4 in canonical lowercase form.
std::string NewUuid();

}  // namespace herald
