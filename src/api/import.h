// The bodies of the bulk subscriber routes: Novu's POST /v1/subscribers/bulk ({subscribers:
// [...]}, at most 500) and Herald's POST /v1/subscribers/import (NDJSON: one subscriber per line,
// with device tokens and topics, for migrations and benchmarks). Pure functions over the request
// body; the handlers are in import.cc.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "providers/registry.h"
#include "store/store.h"

namespace herald::api {

inline constexpr std::size_t kMaxBulkSubscribers = 500;  // Novu's cap on /v1/subscribers/bulk
// The import route's body limit (every other route keeps the server's 1 MiB): about 350 000
// subscribers with one token and one topic each.
inline constexpr std::size_t kImportBodyLimit = 64u << 20;
// One import line at most: what any other route takes as a whole body.
inline constexpr std::size_t kMaxImportLineBytes = 1u << 20;

// Novu's bulk create body: `subscribers`, 1 to 500 items, each read as POST /v1/subscribers
// reads its body (DecodeNewSubscriber). InvalidArgument naming the first bad item
// ("subscribers[2].email must be a string"); the list's own errors in class-validator's words.
Result<std::vector<store::ImportedSubscriber>> DecodeBulkCreate(const Json& body);

// What an import line may hold.
struct ImportRules {
  providers::TokenPolicy token_policy;
  std::size_t max_tokens = 100;  // per channel
};

// The lines of an NDJSON body in order ('\n' ends a line, a '\r' before it is dropped), skipping
// lines that hold only whitespace.
class NdjsonLines {
 public:
  explicit NdjsonLines(std::string_view body) : rest_(body) {}
  // The next non-blank line and its number in the body (1-based); false at the end.
  bool Next(std::string_view* line, std::size_t* number);

 private:
  std::string_view rest_;
  std::size_t number_ = 0;
  bool done_ = false;
};

// One import line into `out` (every member but `where` overwritten): a JSON object with Novu's
// subscriber members (subscriberId required; firstName, lastName, email, phone, avatar, locale,
// timezone, data as POST /v1/subscribers takes them), `channels` (DecodeJitChannel items, members
// providerId, integrationIdentifier and credentials only, at most `rules.max_tokens` tokens
// each) and `topics` (topic keys). Any other member, a line over kMaxImportLineBytes or one that
// is not a JSON object is refused. InvalidArgument naming the field.
Status DecodeImportLine(std::string_view line, const ImportRules& rules,
                        store::ImportedSubscriber& out);

// The checked subscribers of an import, packed: each as a few length-prefixed strings (about a
// third of its line), so that an import holds memory in proportion to its body rather than a
// parsed subscriber (~1 KB) per line, and is read back without parsing its line again (only a
// `data` object is parsed again).
class PackedSubscribers {
 public:
  void Add(const store::ImportedSubscriber& item);
  // The next subscriber, in the order added, into `out` (every member set, `where` too); false
  // at the end.
  Result<bool> Next(store::ImportedSubscriber& out);
  std::size_t size() const { return count_; }

 private:
  std::string bytes_;
  std::size_t read_ = 0;
  std::size_t count_ = 0;
};

// Reads an import body: every line as DecodeImportLine reads it, named "line N" (its number in
// the body), packed. InvalidArgument "line N: <what is wrong>" for the first bad line, or for a
// body without any subscriber.
Result<PackedSubscribers> ReadImport(std::string_view body, const ImportRules& rules);

}  // namespace herald::api
