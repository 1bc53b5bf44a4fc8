// The bulk subscriber routes: Novu's POST /v1/subscribers/bulk (novu-api-extended.md §7) and
// Herald's NDJSON import, POST /v1/subscribers/import. Both read and check the whole request
// before anything is written (a bad item is a 400 naming it, and nothing is applied), then write
// it with one store call, in one transaction (Store::ImportSubscribers), which the store's
// single writer runs while other writes wait: an import's lines are parsed here, before, so that
// the writer spends its time on the rows alone.
#include "api/import.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "api/api.h"
#include "api/input.h"
#include "core/log.h"
#include "server/error_reply.h"

namespace herald::api {
namespace {

constexpr std::string_view kImportFields[] = {"subscriberId", "firstName", "lastName", "email",
                                              "phone",        "avatar",    "locale",   "timezone",
                                              "data",         "channels",  "topics"};
constexpr std::string_view kChannelFields[] = {"providerId", "integrationIdentifier",
                                               "credentials"};

// `status` with "line N: " before its message (its code and extra members kept).
Status AtLine(std::size_t line, const Status& status) {
  return Status(status.code(), "line " + std::to_string(line) + ": " + status.message())
      .WithExtra(status.extra());
}

// Content-Type application/x-ndjson, parameters allowed.
bool IsNdjson(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
  constexpr std::string_view kNdjson = "application/x-ndjson";
  if (media.size() != kNdjson.size()) return false;
  for (std::size_t i = 0; i < media.size(); ++i) {
    char c = media[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kNdjson[i]) return false;
  }
  return true;
}

// ---- packing: varint lengths and counts, strings as length + bytes ----

void PutVarint(std::string& out, std::uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void PutString(std::string& out, std::string_view text) {
  PutVarint(out, text.size());
  out.append(text);
}

// Reads what Put* wrote; `ok` turns false (and stays) if the bytes end too soon.
struct Unpacker {
  std::string_view in;
  bool ok = true;

  std::uint64_t Varint() {
    std::uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in.empty()) break;
      auto byte = static_cast<unsigned char>(in.front());
      in.remove_prefix(1);
      value |= std::uint64_t{byte & 0x7fu} << shift;
      if (byte < 0x80) return value;
    }
    ok = false;
    return 0;
  }
  unsigned Byte() {
    if (in.empty()) {
      ok = false;
      return 0;
    }
    auto byte = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
    return byte;
  }
  std::string String() {
    std::uint64_t size = Varint();
    if (!ok || size > in.size()) {
      ok = false;
      return {};
    }
    std::string out(in.substr(0, size));
    in.remove_prefix(size);
    return out;
  }
};

// The profile's text fields, in the order their bits are packed.
constexpr auto kTextFields =
    std::to_array<std::optional<std::optional<std::string>> store::SubscriberPatch::*>(
        {&store::SubscriberPatch::first_name, &store::SubscriberPatch::last_name,
         &store::SubscriberPatch::email, &store::SubscriberPatch::phone,
         &store::SubscriberPatch::avatar, &store::SubscriberPatch::locale,
         &store::SubscriberPatch::timezone});
constexpr unsigned kDataBit = 1u << kTextFields.size();
constexpr unsigned kIdentifierFlag = 1, kWebhookFlag = 2;

}  // namespace

// Layout of one subscriber: where, subscriberId; a byte of the profile fields that are set (bit
// i: kTextFields[i], kDataBit: data) and a byte of those set to null; each set, non-null one as
// a string (data as JSON text); the channel count, and for each: providerId, a flags byte
// (kIdentifierFlag, kWebhookFlag), those strings, the token count, and per token the token and
// its identity (empty when it is the token itself); the topic count and each key.
void PackedSubscribers::Add(const store::ImportedSubscriber& item) {
  std::string& out = bytes_;
  PutString(out, item.where);
  PutString(out, item.subscriber_id);
  const store::SubscriberPatch& p = item.profile;
  unsigned set = 0, null = 0;
  for (std::size_t i = 0; i < kTextFields.size(); ++i) {
    const auto& field = p.*kTextFields[i];
    if (field) set |= 1u << i;
    if (field && !*field) null |= 1u << i;
  }
  if (p.data) set |= kDataBit;
  if (p.data && !*p.data) null |= kDataBit;
  out.push_back(static_cast<char>(set));
  out.push_back(static_cast<char>(null));
  for (std::size_t i = 0; i < kTextFields.size(); ++i) {
    const auto& field = p.*kTextFields[i];
    if (field && *field) PutString(out, **field);
  }
  if (p.data && *p.data) PutString(out, DumpJson(**p.data));
  PutVarint(out, item.channels.size());
  for (const store::JitChannel& channel : item.channels) {
    PutString(out, channel.provider_id);
    out.push_back(static_cast<char>((channel.integration_identifier ? kIdentifierFlag : 0) |
                                    (channel.webhook_url ? kWebhookFlag : 0)));
    if (channel.integration_identifier) PutString(out, *channel.integration_identifier);
    if (channel.webhook_url) PutString(out, *channel.webhook_url);
    PutVarint(out, channel.tokens.size());
    for (const store::DeviceToken& token : channel.tokens) {
      PutString(out, token.token);
      PutString(out, token.identity == token.token ? std::string_view() : token.identity);
    }
  }
  PutVarint(out, item.topics.size());
  for (const std::string& key : item.topics) PutString(out, key);
  ++count_;
}

Result<bool> PackedSubscribers::Next(store::ImportedSubscriber& out) {
  if (read_ >= bytes_.size()) return false;
  Unpacker in{std::string_view(bytes_).substr(read_)};
  out.where = in.String();
  out.subscriber_id = in.String();
  unsigned set = in.Byte(), null = in.Byte();
  out.profile = {};
  for (std::size_t i = 0; i < kTextFields.size(); ++i) {
    auto& field = out.profile.*kTextFields[i];
    if (null & (1u << i)) {
      field = std::optional<std::string>();
    } else if (set & (1u << i)) {
      field = std::optional<std::string>(in.String());
    }
  }
  if (null & kDataBit) {
    out.profile.data = std::optional<Json>();
  } else if (set & kDataBit) {
    std::string error;
    std::optional<Json> data = ParseJson(in.String(), &error);
    if (!data) return Status::Internal("packed subscriber data does not parse: " + error);
    out.profile.data = std::optional<Json>(std::move(*data));
  }
  out.channels.resize(in.Varint());
  for (store::JitChannel& channel : out.channels) {
    channel.provider_id = in.String();
    unsigned flags = in.Byte();
    channel.integration_identifier.reset();
    channel.webhook_url.reset();
    if (flags & kIdentifierFlag) channel.integration_identifier = in.String();
    if (flags & kWebhookFlag) channel.webhook_url = in.String();
    channel.tokens.resize(in.Varint());
    for (store::DeviceToken& token : channel.tokens) {
      token = {};
      token.token = in.String();
      token.identity = in.String();
      if (token.identity.empty()) token.identity = token.token;
    }
  }
  out.topics.resize(in.Varint());
  for (std::string& key : out.topics) key = in.String();
  if (!in.ok) return Status::Internal("packed subscribers end too soon");
  read_ = bytes_.size() - in.in.size();
  return true;
}

Result<PackedSubscribers> ReadImport(std::string_view body, const ImportRules& rules) {
  NdjsonLines lines(body);
  std::string_view line;
  std::size_t number = 0;
  PackedSubscribers packed;
  store::ImportedSubscriber item;
  while (lines.Next(&line, &number)) {
    if (Status st = DecodeImportLine(line, rules, item); !st.ok()) return AtLine(number, st);
    item.where = "line " + std::to_string(number);
    packed.Add(item);
  }
  if (packed.size() == 0) {
    return Status::InvalidArgument(
        "the body holds no subscriber: send one JSON object per line (NDJSON)");
  }
  return packed;
}

Result<std::vector<store::ImportedSubscriber>> DecodeBulkCreate(const Json& body) {
  auto list = body.find("subscribers");
  if (list == body.end() || list->is_null()) {
    return Status::InvalidArgument("subscribers should not be empty");
  }
  if (!list->is_array()) return Status::InvalidArgument("subscribers must be an array");
  if (list->empty()) return Status::InvalidArgument("subscribers should not be empty");
  if (list->size() > kMaxBulkSubscribers) {
    return Status::InvalidArgument("subscribers must contain no more than " +
                                   std::to_string(kMaxBulkSubscribers) + " elements");
  }
  std::vector<store::ImportedSubscriber> out;
  out.reserve(list->size());
  for (std::size_t i = 0; i < list->size(); ++i) {
    const Json& item = (*list)[i];
    std::string at = "subscribers[" + std::to_string(i) + "]";
    if (!item.is_object()) return Status::InvalidArgument(at + " must be an object");
    ASSIGN_OR_RETURN(NewSubscriber sub, DecodeNewSubscriber(item, at + "."));
    store::ImportedSubscriber imported;
    imported.where = std::move(at);
    imported.subscriber_id = std::move(sub.subscriber_id);
    imported.profile = std::move(sub.profile);
    out.push_back(std::move(imported));
  }
  return out;
}

bool NdjsonLines::Next(std::string_view* line, std::size_t* number) {
  while (!done_) {
    std::size_t end = rest_.find('\n');
    std::string_view text = rest_.substr(0, end);
    if (end == std::string_view::npos) {
      done_ = true;
    } else {
      rest_.remove_prefix(end + 1);
    }
    ++number_;
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (text.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    *line = text;
    *number = number_;
    return true;
  }
  return false;
}

Status DecodeImportLine(std::string_view line, const ImportRules& rules,
                        store::ImportedSubscriber& out) {
  if (line.size() > kMaxImportLineBytes) {
    return Status::InvalidArgument("a line holds at most " + std::to_string(kMaxImportLineBytes) +
                                   " bytes");
  }
  std::string error;
  std::optional<Json> parsed = ParseJson(line, &error);
  if (!parsed) return Status::InvalidArgument(error);
  const Json& body = *parsed;
  if (!body.is_object()) {
    return Status::InvalidArgument("a line must be a JSON object: one subscriber per line");
  }
  RETURN_IF_ERROR(RejectUnknownFields(body, kImportFields));
  ASSIGN_OR_RETURN(NewSubscriber sub, DecodeNewSubscriber(body));
  out.subscriber_id = std::move(sub.subscriber_id);
  out.profile = std::move(sub.profile);
  out.channels.clear();
  out.topics.clear();
  if (auto channels = body.find("channels"); channels != body.end()) {
    if (!channels->is_array()) return Status::InvalidArgument("channels must be an array");
    for (std::size_t i = 0; i < channels->size(); ++i) {
      const Json& item = (*channels)[i];
      std::string at = "channels[" + std::to_string(i) + "]";
      if (item.is_object()) RETURN_IF_ERROR(RejectUnknownFields(item, kChannelFields, at + "."));
      ASSIGN_OR_RETURN(store::JitChannel channel, DecodeJitChannel(item, at, rules.token_policy));
      if (channel.tokens.size() > rules.max_tokens) {
        return Status::InvalidArgument(
            at + ".credentials.deviceTokens holds " + std::to_string(channel.tokens.size()) +
            " device tokens; the limit is " + std::to_string(rules.max_tokens));
      }
      out.channels.push_back(std::move(channel));
    }
  }
  ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> topics, OptStringArray(body, "topics"));
  if (topics) {
    for (std::size_t i = 0; i < topics->size(); ++i) {
      RETURN_IF_ERROR(CheckId((*topics)[i], "topics[" + std::to_string(i) + "]"));
    }
    out.topics = std::move(*topics);
  }
  return Status::Ok();
}

// Novu answers 201 {created: [{subscriberId}], updated: [...], failed: [{message, subscriberId}]}.
// Every item is checked first and a bad one fails the request (as Novu's validation does), and
// the writes share one transaction, so `failed` is always empty here.
Api::Reply Api::CreateSubscribersBulk(Req& r, const Env& env) {
  ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
  ASSIGN_OR_RETURN(std::vector<store::ImportedSubscriber> items, DecodeBulkCreate(body));
  std::size_t next = 0;
  ASSIGN_OR_RETURN(store::ImportReceipt receipt,
                   store_.ImportSubscribers(
                       env.id,
                       [&](store::ImportedSubscriber& out) -> Result<bool> {
                         if (next == items.size()) return false;
                         out = items[next++];
                         return true;
                       },
                       options_.max_tokens_per_channel));
  Json created = Json::array(), updated = Json::array();
  for (std::size_t i = 0; i < items.size() && i < receipt.item_created.size(); ++i) {
    (receipt.item_created[i] ? created : updated)
        .push_back({{"subscriberId", items[i].subscriber_id}});
  }
  return server::DataReply(
      {{"created", std::move(created)}, {"updated", std::move(updated)}, {"failed", Json::array()}},
      201);
}

// Herald's import: NDJSON, one subscriber per line (DecodeImportLine), upserted with its tokens
// and topic memberships. 201 {created, updated, tokensAdded, topicSubscriptionsAdded,
// topicsCreated}.
Api::Reply Api::ImportSubscribers(Req& r, const Env& env) {
  if (!IsNdjson(r.Header("content-type"))) {
    return server::ErrorReply(415, r.target,
                              "Content-Type must be application/x-ndjson: one subscriber per line");
  }
  using Clock = std::chrono::steady_clock;
  auto ms_since = [](Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
  };
  auto started = Clock::now();
  const ImportRules rules{options_.token_policy, options_.max_tokens_per_channel};
  ASSIGN_OR_RETURN(PackedSubscribers packed, ReadImport(r.body, rules));
  const std::size_t count = packed.size();
  auto read_ms = ms_since(started);
  auto writing = Clock::now();
  ASSIGN_OR_RETURN(
      store::ImportReceipt receipt,
      store_.ImportSubscribers(
          env.id, [&packed](store::ImportedSubscriber& out) { return packed.Next(out); },
          rules.max_tokens));
  // write_ms: waiting for the writer (behind another import, say) and writing.
  spdlog::info(
      "subscribers_imported environment={} subscribers={} created={} updated={} tokens_added={} "
      "topic_subscriptions_added={} topics_created={} read_ms={} write_ms={}",
      env.name, count, receipt.created, receipt.updated, receipt.tokens_added,
      receipt.topic_subscriptions_added, receipt.topics_created, read_ms, ms_since(writing));
  return server::DataReply({{"created", receipt.created},
                            {"updated", receipt.updated},
                            {"tokensAdded", receipt.tokens_added},
                            {"topicSubscriptionsAdded", receipt.topic_subscriptions_added},
                            {"topicsCreated", receipt.topics_created}},
                           201);
}

}  // namespace herald::api
