#pragma once

#include <span>
#include <string_view>

namespace herald::store::sqlite {

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

// Every schema version in order. Append only: a released migration never changes.
std::span<const Migration> Migrations();

}  // namespace herald::store::sqlite
