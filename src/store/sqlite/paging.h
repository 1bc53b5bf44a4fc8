// Keyset paging helpers: cursor pages as Novu's v2 lists do them (PageRequest / Page), the
// capped counts that go with them, and LIKE patterns. Used only inside store/sqlite/.
#pragma once

#include <algorithm>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "store/model.h"
#include "store/sqlite/db.h"

namespace herald::store::sqlite {

// Builds "ORDER BY" and the cursor condition for a keyset page over `table` (alias-free) sorted
// by (`column`, id). The cursor row is looked up by id inside the same statement.
struct KeysetSql {
  std::string where;      // " AND (col, id) > (SELECT ...)" or empty
  std::string order;      // " ORDER BY col ASC, id ASC"
  bool reversed = false;  // fetched in reverse order (a `before` page)
};

// `alias` qualifies the outer columns when the page query joins other tables ("ts.").
KeysetSql Keyset(const std::string& table, const PageRequest& page, const std::string& alias = "");

// Fills next/previous for a page fetched with `limit + 1` rows.
template <typename T>
void FinishPage(Page<T>& page, const PageRequest& request, const KeysetSql& k,
                std::vector<std::string> ids) {
  bool more = page.items.size() > static_cast<std::size_t>(request.limit);
  if (more) {
    page.items.pop_back();
    ids.pop_back();
  }
  if (k.reversed) {
    std::reverse(page.items.begin(), page.items.end());
    std::reverse(ids.begin(), ids.end());
  }
  if (ids.empty()) return;
  bool has_after = k.reversed ? true : more;
  bool has_before = k.reversed ? more : (request.after.has_value());
  if (has_after) page.next = ids.back();
  if (has_before) page.previous = ids.front();
}

// The number of rows `from_where` (" FROM ... WHERE ...", its parameters bound by `bind`)
// selects, counted up to a cap: `*capped` says whether there were more.
long long CountCapped(Db& db, const std::string& from_where, const std::function<void(Stmt&)>& bind,
                      bool* capped);

// A `%text%` LIKE pattern with the wildcards in `text` escaped (use with ESCAPE '\\').
std::string ContainsPattern(std::string_view text);

// One keyset page of `table` (rows with an `id` member): `from` is " FROM <table> WHERE ...",
// whose placeholders take `params` in order.
template <typename T, typename ReadRow>
Result<Page<T>> KeysetPage(Db& db, const std::string& table, std::string_view columns,
                           const std::string& from, const std::vector<std::string>& params,
                           const PageRequest& request, ReadRow read_row) {
  auto bind = [&](Stmt& s) {
    for (std::size_t i = 0; i < params.size(); ++i) s.Bind(static_cast<int>(i + 1), params[i]);
  };
  Page<T> page;
  page.total_count = CountCapped(db, from, bind, &page.total_count_capped);
  KeysetSql k = Keyset(table, request);
  Stmt s = db.Prepare("SELECT " + std::string(columns) + from + k.where + k.order + " LIMIT " +
                      std::to_string(request.limit + 1));
  bind(s);
  if (!k.where.empty()) {
    s.Bind(static_cast<int>(params.size() + 1), k.reversed ? *request.before : *request.after);
  }
  std::vector<std::string> ids;
  while (s.Step()) {
    page.items.push_back(read_row(s));
    ids.push_back(page.items.back().id);
  }
  RETURN_IF_ERROR(s.status());
  FinishPage(page, request, k, std::move(ids));
  return page;
}

}  // namespace herald::store::sqlite
