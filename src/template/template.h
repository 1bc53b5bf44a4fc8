// Handlebars-style templates for notification titles and bodies.
//
// Output is plain text: `{{x}}` and `{{{x}}}` (or `{{&x}}`) are identical and nothing is
// HTML-escaped. Supported:
//   - paths: `a.b`, `items.0.name` (as well as Handlebars' `items.[0]`), `[odd key]`,
//     `items.length`, `this`, `./x`, `../x` (one step per enclosing #each or #with), and the
//     data variables `@root`, `@index`, `@key`, `@first`, `@last`;
//   - blocks `#if`, `#unless`, `#each` (arrays and objects), `#with`, each with `{{else}}` (or
//     `{{^}}`), and `{{else if x}}` style chains; block arguments may also be literals
//     (`true`, `3`, "text");
//   - comments `{{! .. }}` and `{{!-- .. --}}`, whitespace control `{{~x~}}`, standalone-line
//     stripping of block tags, and `\{{` for a literal `{{`.
// Everything else (helpers, partials, subexpressions, hash arguments) is a compile error, so
// that a bad template is rejected when it is saved rather than when it is sent.
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace herald::tmpl {

namespace internal {
struct Node;  // The syntax tree, private to template.cc.
}  // namespace internal

// Bounds on one Render call, so that a hostile template cannot exhaust memory or CPU (e.g.
// `#each` nested 32 deep over the same list). Rendering stops, keeping the output so far, at
// the first piece of output that would exceed `max_output_bytes` or once `max_steps` nodes and
// loop iterations have been visited.
struct RenderLimits {
  std::size_t max_output_bytes = std::size_t{1} << 20;
  std::size_t max_steps = std::size_t{1} << 22;
};

// A compiled template. Immutable, so one instance may be rendered from many threads at once.
class Template {
 public:
  static constexpr int kMaxNestingDepth = 32;

  // Parses `source` once. On a syntax error returns InvalidArgument with a message such as
  // "template syntax error at 2:5: {{/if}} does not match {{#each}} opened at 1:1" (1-based
  // line:column, columns counted in code points). Never throws.
  static Result<std::shared_ptr<const Template>> Compile(std::string_view source);

  // Renders against `context` (normally an object such as {"subscriber": .., "payload": ..}).
  // Missing values render as nothing. Never throws.
  std::string Render(const Json& context, const RenderLimits& limits = {}) const;

  Template(const Template&) = delete;
  Template& operator=(const Template&) = delete;
  ~Template();

 private:
  explicit Template(std::vector<internal::Node> nodes);

  std::vector<internal::Node> nodes_;
};

// Compiles each distinct source once. Thread-safe; holds at most `capacity` templates and
// evicts the least recently used. Compile errors are returned but not cached.
class TemplateCache {
 public:
  explicit TemplateCache(std::size_t capacity = 4096);

  Result<std::shared_ptr<const Template>> Get(std::string_view source);
  std::size_t size() const;

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const Template>>;

  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> entries_;  // Most recently used first.
  // Keys view the strings in `entries_`, whose list nodes never move.
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;
};

}  // namespace herald::tmpl
