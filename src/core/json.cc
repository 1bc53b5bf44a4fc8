#include "core/json.h"

namespace herald {
namespace {

// Checked before parsing so that hostile input cannot drive a deep recursion, and so that the
// reason for a rejection is exact. Brackets inside strings are skipped; escapes are honoured.
enum class Scan { kOk, kTooDeep, kBadUtf8 };

// Length of the UTF-8 sequence starting at text[i], or 0 if it is not well formed
// (overlongs, surrogates and code points above U+10FFFF are rejected, as RFC 3629 asks).
std::size_t Utf8SequenceLength(std::string_view text, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char c = byte(i);
  if (c < 0x80) return 1;
  std::size_t n;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

Scan Prescan(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      std::size_t n = Utf8SequenceLength(text, i);
      if (n == 0) return Scan::kBadUtf8;
      i += n;
      continue;
    }
    ++i;
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > max_depth) return Scan::kTooDeep;
        break;
      case ']':
      case '}':
        --depth;
        break;
      default:
        break;
    }
  }
  return Scan::kOk;
}

}  // namespace

std::optional<Json> ParseJson(std::string_view text, std::string* error, const JsonLimits& limits) {
  switch (Prescan(text, limits.max_depth)) {
    case Scan::kTooDeep:
      *error = "JSON nested deeper than " + std::to_string(limits.max_depth) + " levels";
      return std::nullopt;
    case Scan::kBadUtf8:
      *error = "Request body is not valid UTF-8";
      return std::nullopt;
    case Scan::kOk:
      break;
  }
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    *error = "Malformed JSON";
    if (const auto* pe = dynamic_cast<const Json::parse_error*>(&e)) {
      *error += " at byte " + std::to_string(pe->byte);
    }
    return std::nullopt;
  }
}

std::string DumpJson(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

void AppendJsonString(std::string& out, std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    std::size_t n = Utf8SequenceLength(text, i);
    if (n == 0) {  // rare: let the library replace what is not UTF-8
      out += DumpJson(Json(std::string(text)));
      return;
    }
    i += n;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;  // start of the bytes not yet copied
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text, run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xF]);
    }
  }
  out.append(text, run, text.size() - run);
  out.push_back('"');
}

const char* JsonTypeName(const Json& value) { return value.type_name(); }

}  // namespace herald
