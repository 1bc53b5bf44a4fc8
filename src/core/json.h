// The JSON type used across Herald, and parsing with the limits untrusted input needs.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace herald {

using Json = nlohmann::json;

struct JsonLimits {
  int max_depth = 64;
};

// Parses `text` as one JSON document. On failure returns nullopt and sets `error` to a short
// reason suitable for a 400 body ("nested deeper than 64 levels", "invalid UTF-8", ...).
// Never throws.
std::optional<Json> ParseJson(std::string_view text, std::string* error,
                              const JsonLimits& limits = {});

// Serializes without throwing: invalid UTF-8 inside strings is replaced, not fatal.
std::string DumpJson(const Json& value);

// Appends `text` as a JSON string, byte for byte what DumpJson(Json(text)) gives, without building
// a Json value.
void AppendJsonString(std::string& out, std::string_view text);

// Small typed readers used by request decoders.
const char* JsonTypeName(const Json& value);

}  // namespace herald
