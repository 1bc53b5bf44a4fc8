#include "server/http.h"

namespace herald::server {
namespace {

// ASCII case-insensitive equality; header names are stored lowercase, callers may not be.
bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] - 'A' + 'a') : b[i];
    if (x != y) return false;
  }
  return true;
}

}  // namespace

std::string_view Request::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return {};
}

const std::string* Request::Query(std::string_view key) const {
  for (const auto& [k, value] : query) {
    if (k == key) return &value;
  }
  return nullptr;
}

std::vector<std::string> Request::QueryAll(std::string_view key) const {
  std::vector<std::string> values;
  for (const auto& [k, value] : query) {
    // `key[]=` too: how axios (and so @novu/node) writes an array, and Novu's parser reads it.
    bool bracketed = k.size() == key.size() + 2 && k.starts_with(key) && k.ends_with("[]");
    if (k == key || bracketed) values.push_back(value);
  }
  return values;
}

const std::string& Request::Param(std::string_view name) const {
  static const std::string kEmpty;
  for (const auto& [k, value] : params) {
    if (k == name) return value;
  }
  return kEmpty;
}

}  // namespace herald::server
