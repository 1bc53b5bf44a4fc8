#include "core/json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

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

std::optional<OrderedJson> ParseOrderedJson(std::string_view text, const JsonLimits& limits) {
  if (Prescan(text, limits.max_depth) != Scan::kOk) return std::nullopt;
  OrderedJson parsed = OrderedJson::parse(text.begin(), text.end(), nullptr,
                                          /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return std::nullopt;
  return parsed;
}

void AppendJavaScriptNumber(std::string& out, double value) {
  if (!std::isfinite(value)) {
    out += "null";
    return;
  }
  if (value == 0) {  // -0 prints "0"
    out += '0';
    return;
  }
  if (value < 0) {
    out += '-';
    value = -value;
  }
  // The shortest digits that read back as `value`, and its decimal exponent: d.ddde±x.
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  if (ec != std::errc()) {
    out += "null";
    return;
  }
  std::string_view text(buf, static_cast<std::size_t>(end - buf));
  std::size_t e = text.find('e');
  std::string digits;
  for (char c : text.substr(0, e)) {
    if (c != '.') digits += c;
  }
  int exponent = 0;
  std::from_chars(text.data() + e + 1 + (text[e + 1] == '+'), text.data() + text.size(), exponent);
  // ECMAScript: k digits, value = 0.digits * 10^n.
  const int k = static_cast<int>(digits.size());
  const int n = exponent + 1;
  if (k <= n && n <= 21) {
    out += digits;
    out.append(static_cast<std::size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out.append(digits, 0, static_cast<std::size_t>(n));
    out += '.';
    out.append(digits, static_cast<std::size_t>(n));
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(static_cast<std::size_t>(-n), '0');
    out += digits;
  } else {
    out += digits[0];
    if (k > 1) {
      out += '.';
      out.append(digits, 1);
    }
    out += 'e';
    out += n - 1 >= 0 ? '+' : '-';
    out += std::to_string(n - 1 >= 0 ? n - 1 : 1 - n);
  }
}

namespace {

// The value of `key` if JavaScript treats it as an array index (a canonical integer below
// 2^32 - 1): such keys come first in an object, in numeric order.
std::optional<std::uint32_t> ArrayIndex(std::string_view key) {
  if (key.empty() || key.size() > 10 || (key.size() > 1 && key[0] == '0')) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : key) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (n >= 0xFFFFFFFFull) return std::nullopt;
  return static_cast<std::uint32_t>(n);
}

}  // namespace

void AppendJsonLikeJavaScript(std::string& out, const OrderedJson& value,
                              std::initializer_list<JsonSlot> top_level_slots) {
  // Integers a double holds exactly print as they are; larger ones as the double they become.
  constexpr std::int64_t kExact = std::int64_t{1} << 53;
  switch (value.type()) {
    case OrderedJson::value_t::object: {
      const auto& members = value.get_ref<const OrderedJson::object_t&>();
      bool first = true;
      auto append = [&](const std::string& key, const OrderedJson& member) {
        out += first ? '{' : ',';
        first = false;
        AppendJsonString(out, key);
        out += ':';
        for (const JsonSlot& slot : top_level_slots) {
          if (slot.key == key) {
            out += slot.slot;
            return;
          }
        }
        AppendJsonLikeJavaScript(out, member);
      };
      std::vector<std::pair<std::uint32_t, const OrderedJson::object_t::value_type*>> indices;
      for (const auto& member : members) {
        if (auto index = ArrayIndex(member.first)) indices.emplace_back(*index, &member);
      }
      std::sort(indices.begin(), indices.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      for (const auto& [index, member] : indices) append(member->first, member->second);
      for (const auto& member : members) {
        if (indices.empty() || !ArrayIndex(member.first)) append(member.first, member.second);
      }
      if (first) out += '{';
      out += '}';
      return;
    }
    case OrderedJson::value_t::array: {
      out += '[';
      for (std::size_t i = 0; i < value.size(); ++i) {
        if (i > 0) out += ',';
        AppendJsonLikeJavaScript(out, value[i]);
      }
      out += ']';
      return;
    }
    case OrderedJson::value_t::string:
      AppendJsonString(out, value.get_ref<const std::string&>());
      return;
    case OrderedJson::value_t::number_integer: {
      auto v = value.get<std::int64_t>();
      if (v > kExact || v < -kExact) {
        AppendJavaScriptNumber(out, static_cast<double>(v));
      } else {
        out += std::to_string(v);
      }
      return;
    }
    case OrderedJson::value_t::number_unsigned: {
      auto v = value.get<std::uint64_t>();
      if (v > static_cast<std::uint64_t>(kExact)) {
        AppendJavaScriptNumber(out, static_cast<double>(v));
      } else {
        out += std::to_string(v);
      }
      return;
    }
    case OrderedJson::value_t::number_float:
      AppendJavaScriptNumber(out, value.get<double>());
      return;
    case OrderedJson::value_t::boolean:
      out += value.get<bool>() ? "true" : "false";
      return;
    default:  // null (and nothing else a parse produces)
      out += "null";
      return;
  }
}

namespace {

constexpr std::size_t kNone = std::string_view::npos;

std::size_t SkipSpace(std::string_view text, std::size_t i) {
  while (i < text.size() &&
         (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) {
    ++i;
  }
  return i;
}

// `text[i]` opens a string: the index just past its closing quote, or kNone.
std::size_t SkipString(std::string_view text, std::size_t i) {
  for (++i; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == '"') {
      return i + 1;
    }
  }
  return kNone;
}

// `text[i]` starts a value: the index just past it, or kNone.
std::size_t SkipValue(std::string_view text, std::size_t i) {
  if (i >= text.size()) return kNone;
  if (text[i] == '"') return SkipString(text, i);
  if (text[i] != '{' && text[i] != '[') {  // number, true, false, null
    while (i < text.size() && text[i] != ',' && text[i] != '}' && text[i] != ']' &&
           text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r') {
      ++i;
    }
    return i;
  }
  int depth = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == '"') {
      i = SkipString(text, i);
      if (i == kNone) return kNone;
      continue;
    }
    if (c == '{' || c == '[') ++depth;
    if ((c == '}' || c == ']') && --depth == 0) return i + 1;
    ++i;
  }
  return kNone;
}

}  // namespace

std::optional<std::string_view> FindMemberText(std::string_view object_text, std::string_view key) {
  std::size_t i = SkipSpace(object_text, 0);
  if (i >= object_text.size() || object_text[i] != '{') return std::nullopt;
  std::string_view found;
  i = SkipSpace(object_text, i + 1);
  if (i < object_text.size() && object_text[i] == '}') return found;
  while (i < object_text.size() && object_text[i] == '"') {
    std::size_t key_end = SkipString(object_text, i);
    if (key_end == kNone) return std::nullopt;
    std::string_view name = object_text.substr(i + 1, key_end - i - 2);
    if (name.find('\\') != std::string_view::npos) return std::nullopt;
    i = SkipSpace(object_text, key_end);
    if (i >= object_text.size() || object_text[i] != ':') return std::nullopt;
    i = SkipSpace(object_text, i + 1);
    std::size_t value_end = SkipValue(object_text, i);
    if (value_end == kNone || value_end == i) return std::nullopt;
    if (name == key) found = object_text.substr(i, value_end - i);
    i = SkipSpace(object_text, value_end);
    if (i < object_text.size() && object_text[i] == '}') return found;
    if (i >= object_text.size() || object_text[i] != ',') return std::nullopt;
    i = SkipSpace(object_text, i + 1);
  }
  return std::nullopt;
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
