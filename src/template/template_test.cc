#include "template/template.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace herald::tmpl {
namespace {

std::string Render(std::string_view source, const Json& context = Json::object()) {
  auto compiled = Template::Compile(source);
  if (!compiled.ok()) {
    ADD_FAILURE() << "compiling `" << source << "`: " << compiled.status().message();
    return "<error>";
  }
  return (*compiled)->Render(context);
}

std::string CompileError(std::string_view source) {
  auto compiled = Template::Compile(source);
  if (compiled.ok()) return "<compiled>";
  EXPECT_EQ(compiled.status().code(), Code::kInvalidArgument);
  return compiled.status().message();
}

const Json& Context() {
  static const Json context = Json::parse(R"({
    "subscriber": {"firstName": "Ada", "lastName": "Lovelace", "vip": true, "credits": 0},
    "payload": {
      "count": 7, "ratio": 1.5, "tags": ["a", "b", "c"], "empty": [], "none": null,
      "items": [{"name": "apple", "qty": 2}, {"name": "pear", "qty": 0}],
      "scores": {"alice": 3, "bob": 5},
      "first name": "spaced", "html": "<b>&\"'</b>"
    },
    "step": {"digest": true}
  })");
  return context;
}

TEST(TemplateTest, RendersTable) {
  struct Case {
    std::string source;
    std::string want;
  };
  const Case cases[] = {
      {"Hello {{subscriber.firstName}}!", "Hello Ada!"},
      {"Hello {{ subscriber.firstName }}", "Hello Ada"},
      {"{{subscriber/lastName}}", "Lovelace"},
      {"{{payload.items.0.name}}, {{payload.items.[1].name}}", "apple, pear"},
      {"{{payload.[first name]}}", "spaced"},
      {"{{payload.count}} {{payload.ratio}}", "7 1.5"},
      {"{{subscriber.vip}} {{step.missing}}|{{payload.none}}|", "true ||"},
      {"{{payload.tags}}", "a,b,c"},
      {"{{payload.scores}}", "[object Object]"},
      {"{{payload.html}} {{{payload.html}}} {{&payload.html}}",
       "<b>&\"'</b> <b>&\"'</b> <b>&\"'</b>"},
      {"{{payload.tags.length}} {{payload.empty.length}} {{subscriber.firstName.length}}", "3 0 3"},
      {"{{nope.deeper.still}}{{payload.items.9.name}}{{payload.tags.01}}", ""},
      {"{{#if subscriber.vip}}VIP{{else}}regular{{/if}}", "VIP"},
      {"{{#if subscriber.credits}}some{{else}}none{{/if}}", "none"},
      {"{{#unless payload.empty}}no items{{else}}items{{/unless}}", "no items"},
      {"{{#each payload.tags}}{{@index}}={{this}}{{#unless @last}}, {{/unless}}{{/each}}",
       "0=a, 1=b, 2=c"},
      {"{{#each payload.scores}}{{@key}}:{{.}};{{/each}}", "alice:3;bob:5;"},
      {"{{#each payload.empty}}x{{else}}nothing{{/each}}", "nothing"},
      {"{{#each payload.items}}{{name}}x{{qty}} for {{../subscriber.firstName}};{{/each}}",
       "applex2 for Ada;pearx0 for Ada;"},
      {"{{#with subscriber}}{{firstName}} {{./lastName}} {{@root.step.digest}}{{/with}}",
       "Ada Lovelace true"},
      {"{{#with payload.missing}}x{{else}}no payload{{/with}}", "no payload"},
      {"{{#if payload.none}}a{{else if payload.count}}b{{else}}c{{/if}}", "b"},
      {"{{#if payload.none}}a{{else unless step.digest}}b{{else}}c{{/if}}", "c"},
      {"a{{! note }}b{{!-- has }} inside --}}c", "abc"},
      {"\\{{subscriber.firstName}} \\\\{{subscriber.firstName}}", "{{subscriber.firstName}} \\Ada"},
      {"  {{~subscriber.firstName~}}  \n !", "Ada!"},
      {"{{#if true}}lit{{/if}}{{#if 0}}zero{{/if}}{{#with \"s\"}}{{this}}{{/with}}", "lits"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.source);
    EXPECT_EQ(Render(c.source, Context()), c.want);
  }
}

TEST(TemplateTest, FormatsValuesAsJavaScriptDoes) {
  const Json context = Json::parse(R"({
    "int": 7, "neg": -3, "big": 18446744073709551615, "float": 7.0, "half": 1.5,
    "sum": 0.30000000000000004, "tiny": 1e-7, "small": 0.000001, "huge": 1e21,
    "large": 123456789012345680000, "t": true, "f": false, "n": null,
    "nested": [1, [2, 3], null, {"a": 1}, "x"], "obj": {}
  })");
  EXPECT_EQ(Render("{{int}} {{neg}} {{big}} {{float}} {{half}}", context),
            "7 -3 18446744073709551615 7 1.5");
  EXPECT_EQ(Render("{{sum}} {{tiny}} {{small}} {{huge}} {{large}}", context),
            "0.30000000000000004 1e-7 0.000001 1e+21 123456789012345680000");
  EXPECT_EQ(Render("{{t}} {{f}} [{{n}}] {{nested}} {{obj}}", context),
            "true false [] 1,2,3,,[object Object],x [object Object]");
  EXPECT_EQ(Render("{{this}}", Json(-0.0)), "0");
  EXPECT_EQ(Render("{{this}}", Json(2.5e-8)), "2.5e-8");
}

TEST(TemplateTest, TruthinessFollowsHandlebars) {
  const Json context = Json::parse(R"({
    "f": false, "n": null, "s": "", "z": 0, "zf": 0.0, "a": [],
    "t": true, "one": 1, "str": "x", "arr": [0], "obj": {}
  })");
  for (const char* falsy : {"f", "n", "s", "z", "zf", "a", "missing"}) {
    SCOPED_TRACE(falsy);
    EXPECT_EQ(Render(std::string("{{#if ") + falsy + "}}T{{else}}F{{/if}}", context), "F");
    EXPECT_EQ(Render(std::string("{{#unless ") + falsy + "}}U{{/unless}}", context), "U");
  }
  for (const char* truthy : {"t", "one", "str", "arr", "obj"}) {
    SCOPED_TRACE(truthy);
    EXPECT_EQ(Render(std::string("{{#if ") + truthy + "}}T{{else}}F{{/if}}", context), "T");
  }
  // #with only skips "empty" values: 0 counts as a value there.
  EXPECT_EQ(Render("{{#with z}}[{{this}}]{{else}}empty{{/with}}", context), "[0]");
  EXPECT_EQ(Render("{{#with a}}x{{else}}empty{{/with}}", context), "empty");
}

TEST(TemplateTest, EachOverArraysAndObjects) {
  const Json context = Json::parse(R"({
    "rows": [{"cells": [1, 2]}, {"cells": [3]}], "map": {"x": {"v": 1}, "y": {"v": 2}},
    "label": "L", "word": "abc", "num": 3
  })");
  EXPECT_EQ(Render("{{#each rows}}{{#each cells}}{{@index}}{{this}}{{../../label}}"
                   "{{#if @first}}^{{/if}}{{/each}}|{{/each}}",
                   context),
            "01L^12L|03L^|");
  EXPECT_EQ(Render("{{#each map}}{{@key}}{{@index}}{{v}}{{#if @last}}.{{/if}}{{/each}}", context),
            "x01y12.");
  // Arrays report their index as @key too; @index survives a nested #with.
  EXPECT_EQ(Render("{{#each rows}}{{@key}}{{#with cells}}{{@index}}{{/with}}{{/each}}", context),
            "0011");
  // Strings and numbers are not iterable.
  EXPECT_EQ(Render("{{#each word}}x{{else}}s{{/each}}{{#each num}}x{{else}}n{{/each}}", context),
            "sn");
  // Data variables outside #each, and `..` above the root, are simply missing.
  EXPECT_EQ(Render("[{{@index}}{{@key}}{{../label}}{{@root.label}}]", context), "[L]");
}

TEST(TemplateTest, ThisAndParentPaths) {
  const Json context = Json::parse(R"({"name": "top", "child": {"name": "inner"}})");
  EXPECT_EQ(
      Render("{{#with child}}{{this.name}} {{./name}} {{name}} {{../name}}{{/with}}", context),
      "inner inner inner top");
  // #if does not change the context, so `..` inside it still means the #with's parent.
  EXPECT_EQ(Render("{{#with child}}{{#if name}}{{../name}}{{/if}}{{/with}}", context), "top");
  EXPECT_EQ(Render("{{this}}", Json("plain")), "plain");
  EXPECT_EQ(Render("{{.}}", Json(42)), "42");
}

TEST(TemplateTest, ElseChains) {
  const std::string source = "{{#if a}}A{{else if b}}B{{else if c}}C{{else}}none{{/if}}";
  EXPECT_EQ(Render(source, {{"a", true}}), "A");
  EXPECT_EQ(Render(source, {{"b", true}}), "B");
  EXPECT_EQ(Render(source, {{"c", true}}), "C");
  EXPECT_EQ(Render(source, Json::object()), "none");
  EXPECT_EQ(Render("{{#if a}}A{{^}}not a{{/if}}", Json::object()), "not a");
  EXPECT_EQ(Render("{{#if a}}A{{else each list}}{{this}}{{else}}empty{{/if}}", {{"list", {1, 2}}}),
            "12");
}

TEST(TemplateTest, WhitespaceControl) {
  const Json context = {{"items", {"a", "b"}}, {"x", "X"}};
  EXPECT_EQ(Render("[ {{~x~}} ]", context), "[X]");
  EXPECT_EQ(Render("[\n  {{~#each items~}}\n  {{this}}\n  {{~/each~}}\n]", context), "[ab]");
  EXPECT_EQ(Render("a {{~! comment ~}} b", context), "ab");
  EXPECT_EQ(Render("a {{~!-- comment --~}}\n b", context), "ab");
  EXPECT_EQ(Render("{{~{x}~}} !", context), "X!");
}

TEST(TemplateTest, StandaloneBlockLinesLeaveNoBlankLines) {
  const Json context = {{"items", {"a", "b"}}, {"show", true}};
  EXPECT_EQ(Render("List:\n{{#each items}}\n  - {{this}}\n{{/each}}\nEnd", context),
            "List:\n  - a\n  - b\nEnd");
  EXPECT_EQ(Render("  {{#if show}}  \r\nyes\n  {{else}}\nno\n{{/if}}\n", context), "yes\n");
  EXPECT_EQ(Render("a\n{{! comment }}\nb", context), "a\nb");
  // Tags sharing a line with text keep it.
  EXPECT_EQ(Render("x {{#if show}}\ny{{/if}}", context), "x \ny");
  // Plain values are never standalone.
  EXPECT_EQ(Render("{{show}}\nz", context), "true\nz");
}

TEST(TemplateTest, NestingDepthLimit) {
  auto nested = [](int depth) {
    std::string source;
    for (int i = 0; i < depth; ++i) source += "{{#with a}}";
    source += "{{v}}";
    for (int i = 0; i < depth; ++i) source += "{{/with}}";
    return source;
  };
  Json context = {{"v", "leaf"}};
  for (int i = 0; i < Template::kMaxNestingDepth; ++i) context = {{"a", context}};
  EXPECT_EQ(Render(nested(Template::kMaxNestingDepth), context), "leaf");
  EXPECT_EQ(CompileError(nested(Template::kMaxNestingDepth + 1)),
            "template syntax error at 1:353: blocks nested deeper than 32 levels");
}

TEST(TemplateTest, CompileErrorsCarryPositions) {
  struct Case {
    std::string source;
    std::string want;
  };
  const Case cases[] = {
      {"Hello {{name", "1:7: unclosed '{{'"},
      {"Hi {{a {{b}}", "1:4: unclosed '{{'"},
      {"{{{raw}}", "1:1: unclosed '{{{'"},
      {"{{name}}}", "1:7: unexpected '}}}'"},
      {"{{#if a}}x", "1:1: unclosed {{#if}}, expected {{/if}}"},
      {"{{#if a}}{{else if b}}x", "1:1: unclosed {{#if}}"},
      {"{{#each a}}\n  x{{/if}}", "2:4: {{/if}} does not match {{#each}} opened at 1:1"},
      {"x\n{{else}}", "2:1: {{else}} outside of a block"},
      {"{{#if a}}{{else}}{{else}}{{/if}}", "1:18: second {{else}} in {{#if}} opened at 1:1"},
      {"a {{/if}}", "1:3: {{/if}} without an open block"},
      {"{{}}", "1:1: empty expression"},
      {"{{  ~}}", "1:1: empty expression"},
      {"{{#}}", "1:1: missing block helper name"},
      {"{{#if a}}{{/}}", "1:10: missing block name"},
      {"{{#foo a}}{{/foo}}", "1:4: unknown block helper '#foo'"},
      {"{{#if}}{{/if}}", "1:4: #if takes exactly one argument"},
      {"{{#each a b}}{{/each}}", "1:4: #each takes exactly one argument"},
      {"x {{foo bar}}", "1:5: unknown helper 'foo'"},
      {"{{ if }}", "1:4: 'if' is a block helper, use {{#if ...}}"},
      {"{{a=b}}", "1:4: unexpected character '='"},
      {"{{name (sub)}}", "1:8: unexpected character '('"},
      {"{{a.}}", "1:3: invalid path 'a.'"},
      {"{{a..b}}", "1:6: unexpected character 'b'"},
      {"{{a.this}}", "1:3: invalid path 'a.this'"},
      {"{{a.[b}}", "1:5: unclosed '['"},
      {"{{\"text\"}}", "1:3: expected a path"},
      {"{{#if \"x}}{{/if}}", "1:7: unclosed string literal"},
      {"{{@foo}}", "1:3: unknown data variable '@foo'"},
      {"{{> partial}}", "1:1: partials"},
      {"{{^missing}}{{/missing}}", "1:1: inverted sections"},
      {"{{!-- never closed }}", "1:1: unclosed comment"},
      {"{{! never closed", "1:1: unclosed comment"},
      {"{{#if a}}{{/if x}}", "1:10: a closing tag takes only the block name"},
      {"héllo wörld {{", "1:13: unclosed '{{'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.source);
    std::string error = CompileError(c.source);
    EXPECT_TRUE(error.starts_with("template syntax error at ")) << error;
    EXPECT_NE(error.find(c.want), std::string::npos) << error;
  }
}

TEST(TemplateTest, RenderLimitsStopRunawayTemplates) {
  Json list = Json::array();
  for (int i = 0; i < 50; ++i) list.push_back(i);
  const Json context = {{"l", list}};
  // 50^8 iterations if nothing stopped it.
  std::string source;
  for (int i = 0; i < 8; ++i) source += "{{#each @root.l}}";
  source += "x";
  for (int i = 0; i < 8; ++i) source += "{{/each}}";
  auto compiled = Template::Compile(source);
  ASSERT_TRUE(compiled.ok());

  // Far under the bound in Release (~0.1 s); `make sanitize`'s Debug build with ASan and UBSan
  // renders some 70 times slower.
#ifdef __SANITIZE_ADDRESS__
  constexpr auto kBound = std::chrono::seconds(60);
#else
  constexpr auto kBound = std::chrono::seconds(5);
#endif
  const auto start = std::chrono::steady_clock::now();
  std::string out = (*compiled)->Render(context);
  EXPECT_LT(std::chrono::steady_clock::now() - start, kBound);
  EXPECT_LE(out.size(), RenderLimits().max_output_bytes);
  EXPECT_GT(out.size(), 0u);

  EXPECT_EQ((*compiled)->Render(context, {.max_output_bytes = 10}), std::string(10, 'x'));
  EXPECT_LT((*compiled)->Render(context, {.max_steps = 100}).size(), 100u);
}

TEST(TemplateTest, SurvivesArbitraryInput) {
  // Templates come from API input: random mixes of template syntax must compile or fail
  // cleanly, and whatever compiles must render.
  const std::vector<std::string> pieces = {
      "{{",    "}}", "{{{", "}}}",         "#if ",      "#each ",   "#with ",   "/if", "/each",
      "else",  "~",  "!",   "--",          "a",         ".",        "..",       "/",   "@index",
      "@root", "[",  "]",   "this",        " ",         "\n",       "\\",       "\"",  "^",
      "x.0",   "=",  "(",   "{{#each l}}", "{{/each}}", "{{else}}", "\xc3\xa9", "\xff"};
  const Json context = {{"a", {{"b", 1}}}, {"l", {1, {{"a", 2}}, "s"}}, {"x", {7}}};
  std::mt19937 rng(12345);
  int compiled_count = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string source;
    const int length = 1 + static_cast<int>(rng() % 24);
    for (int i = 0; i < length; ++i) source += pieces[rng() % pieces.size()];
    auto compiled = Template::Compile(source);
    if (compiled.ok()) {
      ++compiled_count;
      (void)(*compiled)->Render(context);
    } else {
      EXPECT_EQ(compiled.status().code(), Code::kInvalidArgument) << source;
    }
  }
  EXPECT_GT(compiled_count, 100);
}

TEST(TemplateTest, RendersConcurrently) {
  auto compiled = Template::Compile(
      "{{#each items}}{{name}}={{@index}}{{#unless @last}},{{/unless}}{{/each}} {{user}}");
  ASSERT_TRUE(compiled.ok());
  std::shared_ptr<const Template> tmpl = *compiled;
  std::vector<std::thread> threads;
  std::vector<int> mismatches(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const Json context = {{"items", {{{"name", "a"}}, {{"name", "b"}}}},
                            {"user", "u" + std::to_string(t)}};
      const std::string want = "a=0,b=1 u" + std::to_string(t);
      for (int i = 0; i < 2000; ++i) {
        if (tmpl->Render(context) != want) ++mismatches[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

TEST(TemplateCacheTest, ReturnsTheSameInstanceForTheSameSource) {
  TemplateCache cache;
  auto first = cache.Get("Hi {{name}}");
  auto second = cache.Get(std::string("Hi ") + "{{name}}");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->get(), second->get());
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ((*second)->Render({{"name", "Ada"}}), "Hi Ada");

  auto other = cache.Get("Bye {{name}}");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->get(), first->get());
  EXPECT_EQ(cache.size(), 2u);
}

TEST(TemplateCacheTest, ReturnsButDoesNotCacheErrors) {
  TemplateCache cache;
  auto bad = cache.Get("{{#if x}}");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(TemplateCacheTest, EvictsLeastRecentlyUsed) {
  TemplateCache cache(2);
  auto a = cache.Get("a");
  auto b = cache.Get("b");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(cache.Get("a")->get(), a->get());  // "a" is now the most recently used.
  ASSERT_TRUE(cache.Get("c").ok());            // Evicts "b".
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.Get("a")->get(), a->get());
  EXPECT_NE(cache.Get("b")->get(), b->get());
}

TEST(TemplateCacheTest, ConcurrentGetsShareOneInstance) {
  TemplateCache cache;
  std::vector<const Template*> seen(8, nullptr);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        auto other = cache.Get("t" + std::to_string(i % 20));
        auto shared = cache.Get("{{#each l}}{{this}}{{/each}}");
        if (other.ok() && shared.ok()) seen[t] = shared->get();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(cache.size(), 21u);
  for (int t = 1; t < 8; ++t) EXPECT_EQ(seen[t], seen[0]);
  EXPECT_NE(seen[0], nullptr);
}

}  // namespace
}  // namespace herald::tmpl
