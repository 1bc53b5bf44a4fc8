#include "providers/registry.h"

#include <algorithm>
#include <memory>
#include <mutex>

#include "providers/apns/apns_spec.h"
#include "providers/expo/expo_spec.h"
#include "providers/fcm/fcm_spec.h"
#include "providers/one_signal/one_signal_spec.h"
#include "providers/push_webhook/push_webhook_spec.h"
#include "providers/pusher_beams/pusher_beams_spec.h"
#include "providers/pushpad/pushpad_spec.h"
#include "providers/web_push/web_push_spec.h"

namespace herald::providers {
namespace {

using SpecList = std::vector<std::unique_ptr<ProviderSpec>>;

// The one list of built-in push providers, sorted by id. Never destroyed.
const SpecList& BuiltinSpecs() {
  static const SpecList* const specs = [] {
    auto* list = new SpecList();
    list->push_back(NewApnsSpec());
    list->push_back(NewExpoSpec());
    list->push_back(NewFcmSpec());
    list->push_back(NewOneSignalSpec());
    list->push_back(NewPushWebhookSpec());
    list->push_back(NewPusherBeamsSpec());
    list->push_back(NewPushpadSpec());
    list->push_back(NewWebPushSpec());
    std::sort(list->begin(), list->end(),
              [](const auto& a, const auto& b) { return a->id() < b->id(); });
    return list;
  }();
  return *specs;
}

std::mutex settings_mu;
ProviderSettings settings;  // guarded by settings_mu

bool IsUtf8Continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// "****" + the last 4 characters (code points, not bytes) when `secret` is longer than 12.
std::string Mask(std::string_view secret) {
  constexpr std::string_view kStars = "****";
  auto length =
      std::count_if(secret.begin(), secret.end(), [](char c) { return !IsUtf8Continuation(c); });
  if (length <= 12) return std::string(kStars);
  std::size_t start = secret.size();
  for (int kept = 0; kept < 4;) {
    if (!IsUtf8Continuation(secret[--start])) ++kept;
  }
  return std::string(kStars).append(secret.substr(start));
}

}  // namespace

std::string ProviderSpec::TokenIdentity(std::string_view normalized) const {
  return std::string(normalized);
}

Result<std::unique_ptr<Provider>> ProviderSpec::Create(const Json&) const {
  return Status(Code::kFailedPrecondition,
                "delivery through " + std::string(id()) + " is not available in this version");
}

void SetProviderSettings(const ProviderSettings& value) {
  std::lock_guard lock(settings_mu);
  settings = value;
}

ProviderSettings GetProviderSettings() {
  std::lock_guard lock(settings_mu);
  return settings;
}

const ProviderSpec* FindProvider(std::string_view id) {
  for (const auto& spec : BuiltinSpecs()) {
    if (spec->id() == id) return spec.get();
  }
  return nullptr;
}

std::vector<std::string_view> ProviderIds() {
  std::vector<std::string_view> ids;
  for (const auto& spec : BuiltinSpecs()) ids.push_back(spec->id());
  return ids;
}

Json MaskCredentials(const ProviderSpec& spec, const Json& credentials) {
  Json masked = credentials;
  if (!masked.is_object()) return masked;
  for (const CredentialField& field : spec.fields()) {
    if (!field.secret) continue;
    for (std::string_view key : {field.key, field.alias}) {
      if (key.empty()) continue;
      auto it = masked.find(key);
      if (it == masked.end() || it->is_null()) continue;
      *it = it->is_string() ? Mask(it->get_ref<const std::string&>()) : Mask("");
    }
  }
  return masked;
}

bool IsMaskOf(std::string_view candidate, std::string_view stored) {
  return candidate == Mask(stored);
}

}  // namespace herald::providers
