// The model's name helpers: the names under which states and statuses are stored and shown.
// Depends on no database, so that every store implementation can link it.
#include "store/model.h"

namespace herald::store {

const char* DeliveryStateName(DeliveryState state) {
  switch (state) {
    case DeliveryState::kPending:
      return "pending";
    case DeliveryState::kDelivered:
      return "delivered";
    case DeliveryState::kFailed:
      return "failed";
    case DeliveryState::kCancelled:
      return "cancelled";
  }
  return "pending";
}

std::optional<DeliveryState> ParseDeliveryState(std::string_view name) {
  if (name == "pending") return DeliveryState::kPending;
  if (name == "delivered") return DeliveryState::kDelivered;
  if (name == "failed") return DeliveryState::kFailed;
  if (name == "cancelled") return DeliveryState::kCancelled;
  return std::nullopt;
}

const char* TokenStatusName(TokenStatus status) {
  switch (status) {
    case TokenStatus::kActive:
      return "active";
    case TokenStatus::kExpired:
      return "expired";
    case TokenStatus::kUnsubscribed:
      return "unsubscribed";
  }
  return "active";
}

std::optional<TokenStatus> ParseTokenStatus(std::string_view name) {
  if (name == "active") return TokenStatus::kActive;
  if (name == "expired") return TokenStatus::kExpired;
  if (name == "unsubscribed") return TokenStatus::kUnsubscribed;
  return std::nullopt;
}

bool IsEventType(std::string_view type) {
  return type == kEventMessageSent || type == kEventMessageDelivered ||
         type == kEventMessageFailed || type == kEventDeviceRemoved;
}

}  // namespace herald::store
