// The JSON type used across Herald, and parsing with the limits untrusted input needs.
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace herald {

using Json = nlohmann::json;
// Objects keep their members in document order (Json sorts them): for bodies that must read as
// another implementation writes them.
using OrderedJson = nlohmann::ordered_json;

struct JsonLimits {
  int max_depth = 64;
};

// Parses `text` as one JSON document. On failure returns nullopt and sets `error` to a short
// reason suitable for a 400 body ("nested deeper than 64 levels", "invalid UTF-8", ...).
// Never throws.
std::optional<Json> ParseJson(std::string_view text, std::string* error,
                              const JsonLimits& limits = {});

// Parses like ParseJson (same limits), keeping object members in document order. nullopt if the
// text is not one valid JSON document. Never throws.
std::optional<OrderedJson> ParseOrderedJson(std::string_view text, const JsonLimits& limits = {});

// The text of the value of member `key` of the JSON object `object_text` (the last one if the key
// repeats, as parsers keep), found without parsing the rest. An empty view if the object has no
// such member; nullopt if this quick look cannot tell (not an object, malformed, or a key written
// with escapes): then parse the whole text.
std::optional<std::string_view> FindMemberText(std::string_view object_text, std::string_view key);

// Serializes without throwing: invalid UTF-8 inside strings is replaced, not fatal.
std::string DumpJson(const Json& value);

// A member of the outermost object written with `slot` (one control byte, which JSON text never
// holds unescaped) in place of its value, for the caller to fill in later.
struct JsonSlot {
  std::string_view key;
  char slot;
};

// Appends `value` as JavaScript's JSON.stringify writes it after JSON.parse: no spaces; members in
// JavaScript's order (keys that are array indices, "0" to "4294967294", first in numeric order,
// then the others as they came); numbers as ECMAScript prints a double (1.0 -> 1, 1e-7 -> 1e-7,
// 1e21 -> 1e+21; an integer beyond 2^53 rounded as a double is).
void AppendJsonLikeJavaScript(std::string& out, const OrderedJson& value,
                              std::initializer_list<JsonSlot> top_level_slots = {});

// ECMAScript Number::toString of a finite double (non-finite ones print "null", as
// JSON.stringify does).
void AppendJavaScriptNumber(std::string& out, double value);

// Appends `text` as a JSON string, byte for byte what DumpJson(Json(text)) gives, without building
// a Json value.
void AppendJsonString(std::string& out, std::string_view text);

// Small typed readers used by request decoders.
const char* JsonTypeName(const Json& value);

}  // namespace herald
