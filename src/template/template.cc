#include "template/template.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>

namespace herald::tmpl {
namespace internal {

// A lookup such as `../items.0.name` or `@root.payload`.
struct Path {
  int depth = 0;      // Leading `..` segments: how many context-changing blocks to go up.
  bool data = false;  // An @-variable; segments[0] is its name (root, index, key, first, last).
  std::vector<std::string> segments;
};

// A value in the template: a path, or (as a block argument) a literal such as `true` or "x".
struct Expr {
  Path path;
  std::optional<Json> literal;
};

enum class NodeKind { kText, kValue, kBlock };
enum class Helper { kIf, kUnless, kEach, kWith };

struct Node {
  NodeKind kind = NodeKind::kText;
  std::string text;             // kText.
  Expr expr;                    // kValue, or the argument of a kBlock.
  Helper helper = Helper::kIf;  // kBlock.
  std::vector<Node> body;       // kBlock.
  std::vector<Node> inverse;    // kBlock: the {{else}} part; `{{else if}}` nests a block here.
};

}  // namespace internal

namespace {

using internal::Expr;
using internal::Helper;
using internal::Node;
using internal::NodeKind;
using internal::Path;

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// Characters Handlebars allows in an identifier (`-`, `$`, `:` and non-ASCII included).
bool IsIdChar(char c) {
  return !IsSpace(c) &&
         std::string_view("!\"#%&'()*+,./;<=>@[\\]^`{|}~").find(c) == std::string_view::npos;
}

bool AllBlank(std::string_view s) { return std::all_of(s.begin(), s.end(), IsBlank); }

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::optional<Helper> HelperNamed(std::string_view name) {
  if (name == "if") return Helper::kIf;
  if (name == "unless") return Helper::kUnless;
  if (name == "each") return Helper::kEach;
  if (name == "with") return Helper::kWith;
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Compilation: the source is split into tokens (text and tags), whitespace control is applied
// to the text tokens, and the tokens are assembled into a tree.

enum class TokenKind { kText, kValue, kOpen, kElse, kClose, kComment };

struct Token {
  TokenKind kind = TokenKind::kText;
  std::string text;           // kText.
  std::string_view expr;      // Tags: what stands between the delimiters and the sigil.
  std::size_t pos = 0;        // Tags: offset of the opening `{{`.
  std::size_t expr_pos = 0;   // Tags: offset of `expr`.
  std::size_t end = 0;        // Tags: offset just past the closing `}}`.
  bool strip_before = false;  // `{{~`
  bool strip_after = false;   // `~}}`
};

// One word inside a tag: a path, a number, or (quoted) a string literal.
struct Operand {
  std::string_view raw;  // Without the quotes of a string literal.
  std::size_t pos = 0;
  bool quoted = false;
};

struct ParsedPath {
  Path path;
  bool simple = false;  // A single plain identifier such as `name`: could be a helper name.
};

// A block whose closing tag has not been seen yet.
struct OpenBlock {
  Node node;
  std::string name;
  std::size_t pos = 0;
  bool in_inverse = false;  // After its {{else}}.
  bool chained = false;     // Opened by `{{else if ..}}`; closed by its parent's closing tag.
};

bool IsStandaloneCandidate(TokenKind kind) {
  return kind == TokenKind::kOpen || kind == TokenKind::kClose || kind == TokenKind::kElse ||
         kind == TokenKind::kComment;
}

// Whether `text`, the text before a tag, leaves that tag at the start of a line.
bool EndsAtLineStart(std::string_view text, bool at_template_start) {
  std::size_t newline = text.rfind('\n');
  if (newline == std::string_view::npos) return at_template_start && AllBlank(text);
  return AllBlank(text.substr(newline + 1));
}

// Whether `text`, the text after a tag, leaves only blanks on the tag's line.
bool StartsWithLineEnd(std::string_view text, bool at_template_end) {
  std::size_t newline = text.find('\n');
  if (newline == std::string_view::npos) return at_template_end && AllBlank(text);
  std::string_view head = text.substr(0, newline);
  if (!head.empty() && head.back() == '\r') head.remove_suffix(1);
  return AllBlank(head);
}

void TrimTrailingBlanks(std::string& text) {
  while (!text.empty() && IsBlank(text.back())) text.pop_back();
}

void TrimFirstLine(std::string& text) {
  std::size_t i = 0;
  while (i < text.size() && IsBlank(text[i])) ++i;
  if (i < text.size() && text[i] == '\r') ++i;
  if (i < text.size() && text[i] == '\n') ++i;
  text.erase(0, i);
}

// As in Handlebars, a block tag or comment alone on its line takes the line with it, so that
// `{{#each}}` on a line of its own does not leave a blank line behind.
void StripStandaloneLines(std::vector<Token>& tokens) {
  const std::size_t n = tokens.size();
  std::vector<bool> standalone(n, false);
  for (std::size_t i = 0; i < n; ++i) {
    if (!IsStandaloneCandidate(tokens[i].kind)) continue;
    bool before = i == 0 || (tokens[i - 1].kind == TokenKind::kText &&
                             EndsAtLineStart(tokens[i - 1].text, i == 1));
    bool after = i + 1 == n || (tokens[i + 1].kind == TokenKind::kText &&
                                StartsWithLineEnd(tokens[i + 1].text, i + 2 == n));
    standalone[i] = before && after;
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!standalone[i]) continue;
    if (i > 0) TrimTrailingBlanks(tokens[i - 1].text);
    if (i + 1 < n) TrimFirstLine(tokens[i + 1].text);
  }
}

// `{{~` and `~}}` remove all whitespace (newlines included) on that side of the tag.
void ApplyStripMarkers(std::vector<Token>& tokens) {
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].strip_before && i > 0 && tokens[i - 1].kind == TokenKind::kText) {
      std::string& text = tokens[i - 1].text;
      while (!text.empty() && IsSpace(text.back())) text.pop_back();
    }
    if (tokens[i].strip_after && i + 1 < tokens.size() && tokens[i + 1].kind == TokenKind::kText) {
      std::string& text = tokens[i + 1].text;
      std::size_t k = 0;
      while (k < text.size() && IsSpace(text[k])) ++k;
      text.erase(0, k);
    }
  }
}

void AppendText(std::vector<Node>& nodes, std::string text) {
  if (text.empty()) return;
  if (!nodes.empty() && nodes.back().kind == NodeKind::kText) {
    nodes.back().text += text;
    return;
  }
  Node node;
  node.text = std::move(text);
  nodes.push_back(std::move(node));
}

class Compiler {
 public:
  explicit Compiler(std::string_view source) : source_(source) {}

  Result<std::vector<Node>> Run() {
    ASSIGN_OR_RETURN(std::vector<Token> tokens, Lex());
    StripStandaloneLines(tokens);
    ApplyStripMarkers(tokens);
    for (Token& token : tokens) RETURN_IF_ERROR(Consume(token));
    if (!open_.empty()) {
      const OpenBlock* block = &open_.back();
      while (block->chained) --block;
      return Error(block->pos,
                   "unclosed {{#" + block->name + "}}, expected {{/" + block->name + "}}");
    }
    return std::move(root_);
  }

 private:
  char At(std::size_t i) const { return i < source_.size() ? source_[i] : '\0'; }

  std::string Position(std::size_t offset) const {
    int line = 1;
    int column = 1;
    for (std::size_t i = 0; i < offset && i < source_.size(); ++i) {
      if (source_[i] == '\n') {
        ++line;
        column = 1;
      } else if ((static_cast<unsigned char>(source_[i]) & 0xC0) != 0x80) {
        ++column;  // Count code points, not UTF-8 continuation bytes.
      }
    }
    return std::to_string(line) + ":" + std::to_string(column);
  }

  Status Error(std::size_t offset, const std::string& message) const {
    return Status::InvalidArgument("template syntax error at " + Position(offset) + ": " + message);
  }

  // --- Lexing ---------------------------------------------------------------------------------

  Result<std::vector<Token>> Lex() const {
    std::vector<Token> tokens;
    std::string text;
    auto flush_text = [&] {
      if (text.empty()) return;
      Token token;
      token.text = std::move(text);
      tokens.push_back(std::move(token));
      text.clear();
    };
    std::size_t i = 0;
    while (i < source_.size()) {
      std::size_t open = source_.find("{{", i);
      if (open == std::string_view::npos) {
        text.append(source_.substr(i));
        break;
      }
      // `\{{` is a literal "{{"; `\\{{` is a literal backslash followed by a real tag.
      if (open > i && source_[open - 1] == '\\') {
        text.append(source_.substr(i, open - 1 - i));
        if (open - 1 == i || source_[open - 2] != '\\') {
          text.append("{{");
          i = open + 2;
          continue;
        }
      } else {
        text.append(source_.substr(i, open - i));
      }
      ASSIGN_OR_RETURN(Token tag, LexTag(open));
      flush_text();
      i = tag.end;
      tokens.push_back(std::move(tag));
    }
    flush_text();
    return tokens;
  }

  Result<Token> LexTag(std::size_t open) const {
    Token tag;
    tag.kind = TokenKind::kValue;
    tag.pos = open;
    std::size_t p = open + 2;
    if (At(p) == '~') {
      tag.strip_before = true;
      ++p;
    }
    const char sigil = At(p);
    if (sigil == '!') return LexComment(std::move(tag), p + 1);
    const bool triple = sigil == '{';
    switch (sigil) {
      case '#':
        tag.kind = TokenKind::kOpen;
        break;
      case '/':
        tag.kind = TokenKind::kClose;
        break;
      case '^':
        tag.kind = TokenKind::kElse;
        break;
      case '{':
      case '&':
        break;
      case '>':
        return Error(open, "partials ({{> ...}}) are not supported");
      default:
        break;
    }
    if (std::string_view("#/^{&").find(sigil) != std::string_view::npos) ++p;

    // The tag ends at the first `}}` (`}}}` after `{{{`), optionally preceded by `~`.
    std::size_t content_end = std::string_view::npos;
    for (std::size_t k = source_.find("}}", p); k != std::string_view::npos;
         k = source_.find("}}", k + 1)) {
      if (!triple) {
        tag.strip_after = k > p && source_[k - 1] == '~';
        content_end = tag.strip_after ? k - 1 : k;
        tag.end = k + 2;
      } else if (At(k + 2) == '}') {
        content_end = k;
        tag.end = k + 3;
      } else if (k >= p + 2 && source_[k - 1] == '~' && source_[k - 2] == '}') {
        tag.strip_after = true;
        content_end = k - 2;
        tag.end = k + 2;
      } else {
        continue;
      }
      break;
    }
    const char* unclosed = triple ? "unclosed '{{{'" : "unclosed '{{'";
    if (content_end == std::string_view::npos) return Error(open, unclosed);
    tag.expr = source_.substr(p, content_end - p);
    tag.expr_pos = p;
    if (tag.expr.find("{{") != std::string_view::npos) return Error(open, unclosed);
    if (!triple && !tag.strip_after && At(tag.end) == '}') {
      return Error(tag.end - 2, "unexpected '}}}' closing '{{' (triple braces open with '{{{')");
    }

    if (tag.kind == TokenKind::kElse && !TrimSpace(tag.expr).empty()) {
      return Error(open, "inverted sections ({{^name}}) are not supported, use {{#unless name}}");
    }
    if (tag.kind == TokenKind::kValue && sigil != '{' && sigil != '&') {
      // `{{else}}` and `{{else if x}}`: keep what follows `else` as a chained block.
      std::string_view trimmed = TrimSpace(tag.expr);
      if (trimmed.starts_with("else") && (trimmed.size() == 4 || IsSpace(trimmed[4]))) {
        std::size_t skip = static_cast<std::size_t>(trimmed.data() - tag.expr.data()) + 4;
        tag.kind = TokenKind::kElse;
        tag.expr.remove_prefix(skip);
        tag.expr_pos += skip;
      }
    }
    return tag;
  }

  Result<Token> LexComment(Token tag, std::size_t p) const {
    tag.kind = TokenKind::kComment;
    if (source_.substr(p, 2) == "--") {  // `{{!-- .. --}}` may contain `}}`.
      for (std::size_t k = source_.find("--", p); k != std::string_view::npos;
           k = source_.find("--", k + 1)) {
        if (At(k + 2) == '}' && At(k + 3) == '}') {
          tag.end = k + 4;
          return tag;
        }
        if (At(k + 2) == '~' && At(k + 3) == '}' && At(k + 4) == '}') {
          tag.strip_after = true;
          tag.end = k + 5;
          return tag;
        }
      }
      return Error(tag.pos, "unclosed comment, expected '--}}'");
    }
    std::size_t k = source_.find("}}", p);
    if (k == std::string_view::npos) return Error(tag.pos, "unclosed comment, expected '}}'");
    tag.strip_after = k > p && source_[k - 1] == '~';
    tag.end = k + 2;
    return tag;
  }

  // --- Expressions ----------------------------------------------------------------------------

  Result<std::vector<Operand>> SplitOperands(const Token& tag) const {
    std::vector<Operand> operands;
    std::string_view e = tag.expr;
    std::size_t i = 0;
    while (true) {
      while (i < e.size() && IsSpace(e[i])) ++i;
      if (i == e.size()) return operands;
      const std::size_t start = i;
      if (e[i] == '"' || e[i] == '\'') {
        std::size_t close = e.find(e[i], i + 1);
        if (close == std::string_view::npos) {
          return Error(tag.expr_pos + i, "unclosed string literal");
        }
        operands.push_back({e.substr(i + 1, close - i - 1), tag.expr_pos + i, true});
        i = close + 1;
        if (i < e.size() && !IsSpace(e[i])) return Unexpected(e[i], tag.expr_pos + i);
        continue;
      }
      while (i < e.size() && !IsSpace(e[i])) {
        if (e[i] == '[') {  // A literal segment such as `[first name]`.
          std::size_t close = e.find(']', i);
          if (close == std::string_view::npos) return Error(tag.expr_pos + i, "unclosed '['");
          i = close + 1;
        } else if (IsIdChar(e[i]) || e[i] == '.' || e[i] == '/' || e[i] == '@') {
          ++i;
        } else {
          return Unexpected(e[i], tag.expr_pos + i);
        }
      }
      operands.push_back({e.substr(start, i - start), tag.expr_pos + start, false});
    }
  }

  Status Unexpected(char c, std::size_t offset) const {
    return Error(offset, std::string("unexpected character '") + c + "'");
  }

  // Paths are segments separated by `.` or `/`. `..`, `.` and `this` may only lead a path.
  Result<ParsedPath> ParsePath(const Operand& operand) const {
    struct Segment {
      std::string_view text;
      bool literal = false;  // Written as `[text]`: never a keyword.
    };
    std::string_view s = operand.raw;
    std::vector<Segment> segments;
    ParsedPath parsed;
    std::size_t i = 0;
    if (!s.empty() && s[0] == '@') {
      parsed.path.data = true;
      ++i;
    }
    while (true) {
      if (i >= s.size()) return Error(operand.pos, "invalid path '" + std::string(s) + "'");
      if (s[i] == '[') {
        std::size_t close = s.find(']', i);
        segments.push_back({s.substr(i + 1, close - i - 1), true});
        i = close + 1;
      } else if (s[i] == '.') {
        std::size_t len = i + 1 < s.size() && s[i + 1] == '.' ? 2 : 1;
        segments.push_back({s.substr(i, len)});
        i += len;
      } else {
        std::size_t j = i;
        while (j < s.size() && IsIdChar(s[j])) ++j;
        if (j == i) return Unexpected(s[i], operand.pos + i);
        segments.push_back({s.substr(i, j - i)});
        i = j;
      }
      if (i == s.size()) break;
      if (s[i] != '.' && s[i] != '/') return Unexpected(s[i], operand.pos + i);
      ++i;
    }

    auto is_keyword = [](const Segment& seg, std::string_view word) {
      return !seg.literal && seg.text == word;
    };
    std::size_t k = 0;
    if (parsed.path.data) {
      static constexpr std::string_view kDataNames[] = {"root", "index", "key", "first", "last"};
      if (segments[0].literal || std::find(std::begin(kDataNames), std::end(kDataNames),
                                           segments[0].text) == std::end(kDataNames)) {
        return Error(operand.pos, "unknown data variable '@" + std::string(segments[0].text) + "'");
      }
    } else {
      while (k < segments.size() && is_keyword(segments[k], "..")) ++k;
      parsed.path.depth = static_cast<int>(k);
      if (k < segments.size() &&
          (is_keyword(segments[k], ".") || is_keyword(segments[k], "this"))) {
        ++k;
      }
      parsed.simple = k == 0 && segments.size() == 1 && !segments[0].literal;
    }
    for (std::size_t j = k; j < segments.size(); ++j) {
      if (is_keyword(segments[j], "..") || is_keyword(segments[j], ".") ||
          is_keyword(segments[j], "this")) {
        return Error(operand.pos, "invalid path '" + std::string(s) +
                                      "': '..', '.' and 'this' may only start a path");
      }
      parsed.path.segments.emplace_back(segments[j].text);
    }
    return parsed;
  }

  // A block argument: a literal (`true`, `false`, `null`, `undefined`, a number or a quoted
  // string), otherwise a path.
  Result<Expr> ParseArgument(const Operand& operand) const {
    Expr expr;
    std::string_view raw = operand.raw;
    if (operand.quoted) {
      expr.literal = Json(std::string(raw));
      return expr;
    }
    if (raw == "true" || raw == "false") {
      expr.literal = Json(raw == "true");
      return expr;
    }
    if (raw == "null" || raw == "undefined") {
      expr.literal = Json(nullptr);
      return expr;
    }
    if (std::optional<Json> number = ParseNumber(raw)) {
      expr.literal = std::move(number);
      return expr;
    }
    ASSIGN_OR_RETURN(ParsedPath parsed, ParsePath(operand));
    expr.path = std::move(parsed.path);
    return expr;
  }

  // `-?[0-9]+(\.[0-9]+)?`, as Handlebars reads number literals.
  static std::optional<Json> ParseNumber(std::string_view raw) {
    std::string_view digits = raw.starts_with('-') ? raw.substr(1) : raw;
    std::size_t dot = digits.find('.');
    std::string_view whole = digits.substr(0, dot);
    std::string_view fraction =
        dot == std::string_view::npos ? std::string_view() : digits.substr(dot + 1);
    auto is_digits = [](std::string_view s) {
      return !s.empty() &&
             std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    if (!is_digits(whole) || (dot != std::string_view::npos && !is_digits(fraction))) {
      return std::nullopt;
    }
    const char* end = raw.data() + raw.size();
    if (dot == std::string_view::npos) {
      std::int64_t value = 0;
      if (std::from_chars(raw.data(), end, value).ec == std::errc()) return Json(value);
    }
    double value = 0;
    std::from_chars(raw.data(), end, value);
    return Json(value);
  }

  // --- Tree building --------------------------------------------------------------------------

  std::vector<Node>& Output() {
    if (open_.empty()) return root_;
    OpenBlock& top = open_.back();
    return top.in_inverse ? top.node.inverse : top.node.body;
  }

  Status Consume(Token& token) {
    switch (token.kind) {
      case TokenKind::kText:
        AppendText(Output(), std::move(token.text));
        return Status::Ok();
      case TokenKind::kComment:
        return Status::Ok();
      case TokenKind::kValue:
        return ConsumeValue(token);
      case TokenKind::kOpen:
        return ConsumeOpen(token, /*chained=*/false);
      case TokenKind::kElse:
        return ConsumeElse(token);
      case TokenKind::kClose:
        return ConsumeClose(token);
    }
    return Status::Ok();
  }

  Status ConsumeValue(const Token& token) {
    ASSIGN_OR_RETURN(std::vector<Operand> operands, SplitOperands(token));
    if (operands.empty()) return Error(token.pos, "empty expression");
    const Operand& first = operands[0];
    if (operands.size() > 1) {
      return Error(first.pos, "unknown helper '" + std::string(first.raw) + "'");
    }
    if (first.quoted) return Error(first.pos, "expected a path, not a string literal");
    ASSIGN_OR_RETURN(ParsedPath parsed, ParsePath(first));
    if (parsed.simple && HelperNamed(first.raw)) {
      std::string name(first.raw);
      return Error(first.pos, "'" + name + "' is a block helper, use {{#" + name + " ...}}");
    }
    Node node;
    node.kind = NodeKind::kValue;
    node.expr.path = std::move(parsed.path);
    Output().push_back(std::move(node));
    return Status::Ok();
  }

  Status ConsumeOpen(const Token& token, bool chained) {
    if (open_.size() >= static_cast<std::size_t>(Template::kMaxNestingDepth)) {
      return Error(token.pos, "blocks nested deeper than " +
                                  std::to_string(Template::kMaxNestingDepth) + " levels");
    }
    ASSIGN_OR_RETURN(std::vector<Operand> operands, SplitOperands(token));
    if (operands.empty()) return Error(token.pos, "missing block helper name");
    const Operand& name = operands[0];
    std::optional<Helper> helper = name.quoted ? std::nullopt : HelperNamed(name.raw);
    if (!helper) {
      return Error(name.pos, "unknown block helper '#" + std::string(name.raw) +
                                 "' (expected if, unless, each or with)");
    }
    if (operands.size() != 2) {
      return Error(name.pos, "#" + std::string(name.raw) + " takes exactly one argument");
    }
    OpenBlock block;
    ASSIGN_OR_RETURN(block.node.expr, ParseArgument(operands[1]));
    block.node.kind = NodeKind::kBlock;
    block.node.helper = *helper;
    block.name = std::string(name.raw);
    block.pos = token.pos;
    block.chained = chained;
    open_.push_back(std::move(block));
    return Status::Ok();
  }

  Status ConsumeElse(const Token& token) {
    if (open_.empty()) return Error(token.pos, "{{else}} outside of a block");
    OpenBlock& top = open_.back();
    if (top.in_inverse) {
      return Error(token.pos,
                   "second {{else}} in {{#" + top.name + "}} opened at " + Position(top.pos));
    }
    top.in_inverse = true;
    if (TrimSpace(token.expr).empty()) return Status::Ok();
    return ConsumeOpen(token, /*chained=*/true);  // `{{else if x}}`
  }

  Status ConsumeClose(const Token& token) {
    ASSIGN_OR_RETURN(std::vector<Operand> operands, SplitOperands(token));
    if (operands.empty()) return Error(token.pos, "missing block name in closing tag");
    if (operands.size() > 1 || operands[0].quoted) {
      return Error(token.pos, "a closing tag takes only the block name, e.g. {{/if}}");
    }
    const std::string name(operands[0].raw);
    if (open_.empty()) return Error(token.pos, "{{/" + name + "}} without an open block");
    // An `{{else if}}` chain ends with the closing tag of the block that started it.
    while (open_.back().chained) {
      Node node = std::move(open_.back().node);
      open_.pop_back();
      Output().push_back(std::move(node));
    }
    OpenBlock& top = open_.back();
    if (top.name != name) {
      return Error(token.pos, "{{/" + name + "}} does not match {{#" + top.name + "}} opened at " +
                                  Position(top.pos));
    }
    Node node = std::move(top.node);
    open_.pop_back();
    Output().push_back(std::move(node));
    return Status::Ok();
  }

  std::string_view source_;
  std::vector<Node> root_;
  std::vector<OpenBlock> open_;
};

// ---------------------------------------------------------------------------------------------
// Rendering.

// Number formatting as JavaScript's Number.prototype.toString: shortest round-trip digits,
// plain notation for exponents in [-7, 21), otherwise e.g. "1e+21".
std::string JsNumber(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  if (value == 0) return "0";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<std::size_t>(end - buf));  // "-1.25e+02"
  std::string out;
  if (sci.starts_with('-')) {
    out = "-";
    sci.remove_prefix(1);
  }
  std::size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e)) {
    if (c != '.') digits += c;
  }
  int exponent = std::atoi(std::string(sci.substr(e + 1)).c_str());
  const int k = static_cast<int>(digits.size());
  const int n = exponent + 1;  // Position of the decimal point relative to the digits.
  if (k <= n && n <= 21) {
    out += digits + std::string(static_cast<std::size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, n) + "." + digits.substr(n);
  } else if (-6 < n && n <= 0) {
    out += "0." + std::string(static_cast<std::size_t>(-n), '0') + digits;
  } else {
    out += digits.substr(0, 1);
    if (k > 1) out += "." + digits.substr(1);
    out += exponent < 0 ? "e-" : "e+";
    out += std::to_string(std::abs(exponent));
  }
  return out;
}

// Appends `value` as JavaScript's String(value) would show it, except that null and undefined
// show as nothing. Arrays join their elements with commas, as Array.prototype.toString.
void AppendJs(const Json& value, std::string& out, int depth = 0) {
  switch (value.type()) {
    case Json::value_t::string:
      out += *value.get_ptr<const std::string*>();
      break;
    case Json::value_t::boolean:
      out += *value.get_ptr<const bool*>() ? "true" : "false";
      break;
    case Json::value_t::number_integer:
      out += std::to_string(*value.get_ptr<const std::int64_t*>());
      break;
    case Json::value_t::number_unsigned:
      out += std::to_string(*value.get_ptr<const std::uint64_t*>());
      break;
    case Json::value_t::number_float:
      out += JsNumber(*value.get_ptr<const double*>());
      break;
    case Json::value_t::array:
      if (depth >= 64) break;  // Deeper arrays are unreasonable; don't recurse without bound.
      for (std::size_t i = 0; i < value.size(); ++i) {
        if (i > 0) out += ',';
        AppendJs(value[i], out, depth + 1);
      }
      break;
    case Json::value_t::object:
      out += "[object Object]";
      break;
    default:
      break;  // null, discarded, binary
  }
}

// Handlebars' truthiness for #if and #unless.
bool IsTruthy(const Json* value) {
  if (value == nullptr) return false;
  switch (value->type()) {
    case Json::value_t::boolean:
      return *value->get_ptr<const bool*>();
    case Json::value_t::number_integer:
      return *value->get_ptr<const std::int64_t*>() != 0;
    case Json::value_t::number_unsigned:
      return *value->get_ptr<const std::uint64_t*>() != 0;
    case Json::value_t::number_float: {
      double d = *value->get_ptr<const double*>();
      return d != 0 && !std::isnan(d);
    }
    case Json::value_t::string:
      return !value->get_ptr<const std::string*>()->empty();
    case Json::value_t::array:
      return !value->empty();
    case Json::value_t::object:
    case Json::value_t::binary:
      return true;
    default:
      return false;
  }
}

// Handlebars' isEmpty, used by #with: falsy values except 0, and empty arrays.
bool IsEmpty(const Json* value) {
  if (value != nullptr && value->is_number()) return std::isnan(value->get<double>());
  return !IsTruthy(value);
}

// The canonical decimal form of an array index ("0", "12"; not "01" or "+1").
std::optional<std::size_t> ArrayIndex(std::string_view s) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  std::size_t index = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), index);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return index;
}

// Length of a UTF-8 string in UTF-16 code units, as JavaScript's String.length counts.
std::size_t Utf16Length(const std::string& s) {
  std::size_t length = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++length;  // Each code point...
    if (c >= 0xF0) ++length;           // ...and a second unit for those beyond the BMP.
  }
  return length;
}

// The result of a lookup: a value inside the context or template, or one computed on the
// fly (`items.length`). get() is null when the path resolves to nothing.
class Lookup {
 public:
  Lookup() = default;
  explicit Lookup(const Json* found) : found_(found) {}
  explicit Lookup(Json computed) : computed_(std::move(computed)), is_computed_(true) {}
  const Json* get() const { return is_computed_ ? &computed_ : found_; }

 private:
  const Json* found_ = nullptr;
  Json computed_;
  bool is_computed_ = false;
};

class Renderer {
 public:
  Renderer(const Json& root, const RenderLimits& limits, std::string& out)
      : root_(root), limits_(limits), out_(out) {}

  void Run(const std::vector<Node>& nodes) {
    frames_.push_back({&root_, nullptr});
    RenderNodes(nodes);
  }

 private:
  // The @-variables of one #each iteration.
  struct Iteration {
    Json index, key, first, last;
  };
  // A context pushed by #each or #with; `../` walks up these.
  struct Frame {
    const Json* context;
    const Iteration* data;  // Of the innermost #each, inherited by #with.
  };

  bool Spend() {
    if (!stopped_ && ++steps_ > limits_.max_steps) stopped_ = true;
    return !stopped_;
  }

  void Emit(std::string_view s) {
    if (stopped_) return;
    if (out_.size() + s.size() > limits_.max_output_bytes) {
      stopped_ = true;
      return;
    }
    out_.append(s);
  }

  void RenderNodes(const std::vector<Node>& nodes) {
    for (const Node& node : nodes) {
      if (!Spend()) return;
      switch (node.kind) {
        case NodeKind::kText:
          Emit(node.text);
          break;
        case NodeKind::kValue: {
          Lookup found = Resolve(node.expr);
          if (found.get() == nullptr) break;
          std::string text;
          AppendJs(*found.get(), text);
          Emit(text);
          break;
        }
        case NodeKind::kBlock:
          RenderBlock(node);
          break;
      }
    }
  }

  void RenderBlock(const Node& node) {
    Lookup argument = Resolve(node.expr);
    const Json* value = argument.get();
    switch (node.helper) {
      case Helper::kIf:
        RenderNodes(IsTruthy(value) ? node.body : node.inverse);
        break;
      case Helper::kUnless:
        RenderNodes(IsTruthy(value) ? node.inverse : node.body);
        break;
      case Helper::kWith:
        if (IsEmpty(value)) {
          RenderNodes(node.inverse);
          break;
        }
        frames_.push_back({value, frames_.back().data});
        RenderNodes(node.body);
        frames_.pop_back();
        break;
      case Helper::kEach:
        RenderEach(node, value);
        break;
    }
  }

  void RenderEach(const Node& node, const Json* list) {
    const bool iterable = list != nullptr && (list->is_array() || list->is_object());
    if (!iterable || list->empty()) {
      RenderNodes(node.inverse);
      return;
    }
    const std::size_t count = list->size();
    Iteration data;
    frames_.push_back({nullptr, &data});
    std::size_t i = 0;
    for (auto it = list->begin(); it != list->end() && Spend(); ++it, ++i) {
      data.index = i;
      data.key = list->is_object() ? Json(it.key()) : Json(i);
      data.first = i == 0;
      data.last = i + 1 == count;
      frames_.back().context = &*it;
      RenderNodes(node.body);
    }
    frames_.pop_back();
  }

  Lookup Resolve(const Expr& expr) const {
    if (expr.literal) return Lookup(&*expr.literal);
    const Path& path = expr.path;
    const Json* current = nullptr;
    std::size_t first = 0;
    if (path.data) {
      const std::string& name = path.segments[0];
      const Iteration* data = frames_.back().data;
      first = 1;
      if (name == "root") {
        current = &root_;
      } else if (data == nullptr) {
        return {};
      } else if (name == "index") {
        current = &data->index;
      } else if (name == "key") {
        current = &data->key;
      } else if (name == "first") {
        current = &data->first;
      } else {
        current = &data->last;
      }
    } else {
      if (static_cast<std::size_t>(path.depth) >= frames_.size()) return {};
      current = frames_[frames_.size() - 1 - static_cast<std::size_t>(path.depth)].context;
    }
    for (std::size_t i = first; i < path.segments.size(); ++i) {
      const std::string& segment = path.segments[i];
      const bool last = i + 1 == path.segments.size();
      if (current->is_object()) {
        auto it = current->find(segment);
        if (it == current->end()) return {};
        current = &*it;
      } else if (current->is_array()) {
        if (segment == "length") return last ? Lookup(Json(current->size())) : Lookup();
        std::optional<std::size_t> index = ArrayIndex(segment);
        if (!index || *index >= current->size()) return {};
        current = &(*current)[*index];
      } else if (current->is_string() && segment == "length" && last) {
        return Lookup(Json(Utf16Length(*current->get_ptr<const std::string*>())));
      } else {
        return {};
      }
    }
    return Lookup(current);
  }

  const Json& root_;
  const RenderLimits& limits_;
  std::string& out_;
  std::vector<Frame> frames_;
  std::size_t steps_ = 0;
  bool stopped_ = false;
};

}  // namespace

Template::Template(std::vector<internal::Node> nodes) : nodes_(std::move(nodes)) {}
Template::~Template() = default;

Result<std::shared_ptr<const Template>> Template::Compile(std::string_view source) {
  ASSIGN_OR_RETURN(std::vector<internal::Node> nodes, Compiler(source).Run());
  return std::shared_ptr<const Template>(new Template(std::move(nodes)));
}

std::string Template::Render(const Json& context, const RenderLimits& limits) const {
  std::string out;
  Renderer(context, limits, out).Run(nodes_);
  return out;
}

TemplateCache::TemplateCache(std::size_t capacity)
    : capacity_(std::max<std::size_t>(capacity, 1)) {}

Result<std::shared_ptr<const Template>> TemplateCache::Get(std::string_view source) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = index_.find(source); it != index_.end()) {
      entries_.splice(entries_.begin(), entries_, it->second);
      return it->second->second;
    }
  }
  // Compile outside the lock; if another thread won the race, keep its instance.
  ASSIGN_OR_RETURN(std::shared_ptr<const Template> compiled, Template::Compile(source));
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = index_.find(source); it != index_.end()) return it->second->second;
  if (entries_.size() >= capacity_) {
    index_.erase(entries_.back().first);
    entries_.pop_back();
  }
  entries_.emplace_front(std::string(source), compiled);
  index_.emplace(entries_.front().first, entries_.begin());
  return compiled;
}

std::size_t TemplateCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace herald::tmpl
