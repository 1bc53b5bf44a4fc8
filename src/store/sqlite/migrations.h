// The schema: every migration in order, and Migrate, which applies those a database lacks.
#pragma once

#include <span>
#include <string_view>

#include "core/status.h"
#include "store/sqlite/db.h"

namespace herald::store::sqlite {

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

// Every schema version in order. Append only: a released migration never changes.
std::span<const Migration> Migrations();

// Brings the database of `db` (the writer's connection) to the newest schema version: applies
// each migration newer than the last one recorded in schema_migrations, each in its own
// transaction.
Status Migrate(Db& db);

}  // namespace herald::store::sqlite
