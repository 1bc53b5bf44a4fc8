// Turns (workflow, subscriber, notification) into messages: renders each push step's title and
// body, merges the provider overrides (overrides.<pid> < overrides.providers.<pid> <
// overrides.steps.<stepId>.providers.<pid>), and emits one message per device token of every
// channel whose integration is active (or per override `deviceTokens`).
#pragma once

#include <map>
#include <string>

#include "store/store.h"
#include "template/template.h"

namespace herald::delivery {

// `organization_of` maps environment id -> organization id (for the subscriber document the
// push-webhook payload carries). The cache must outlive the planner.
store::MessagePlanner MakePlanner(tmpl::TemplateCache& templates,
                                  std::map<std::string, std::string> organization_of);

// The provider overrides for `provider_id` at step `step_id`, merged in Novu's precedence.
Json MergedOverrides(const Json& overrides, const std::string& provider_id,
                     const std::string& step_id);

}  // namespace herald::delivery
