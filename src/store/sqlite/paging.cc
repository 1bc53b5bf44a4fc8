// Keyset paging helpers: the ORDER BY and cursor condition of a page, capped counts and LIKE
// patterns.
#include "store/sqlite/paging.h"

#include <algorithm>

namespace herald::store::sqlite {
namespace {

constexpr long long kCountCap = 50000;

std::string SortColumn(const PageRequest& page) {
  if (page.order_by == "updatedAt") return "updated_at";
  if (page.order_by == "_id") return "id";
  return "created_at";
}

}  // namespace

KeysetSql Keyset(const std::string& table, const PageRequest& page, const std::string& alias) {
  KeysetSql k;
  std::string col = SortColumn(page);
  k.reversed = page.before.has_value() && !page.after.has_value();
  bool desc = k.reversed ? !page.descending : page.descending;
  const char* dir = desc ? "DESC" : "ASC";
  k.order = " ORDER BY " + alias + col + " " + dir + ", " + alias + "id " + dir;
  if (page.after || page.before) {
    k.where = " AND (" + alias + col + ", " + alias + "id) " + (desc ? "<" : ">") + " (SELECT " +
              col + ", id FROM " + table + " WHERE id = ?)";
  }
  return k;
}

long long CountCapped(Db& db, const std::string& from_where, const std::function<void(Stmt&)>& bind,
                      bool* capped) {
  Stmt s = db.Prepare("SELECT COUNT(*) FROM (SELECT 1 " + from_where + " LIMIT " +
                      std::to_string(kCountCap + 1) + ")");
  bind(s);
  long long n = s.Step() ? s.Int(0) : 0;
  *capped = n > kCountCap;
  return std::min(n, kCountCap);
}

std::string ContainsPattern(std::string_view text) {
  std::string pattern = "%";
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') pattern.push_back('\\');
    pattern.push_back(c);
  }
  return pattern + "%";
}

}  // namespace herald::store::sqlite
