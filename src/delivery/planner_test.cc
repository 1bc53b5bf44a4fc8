#include "delivery/planner.h"

#include <gtest/gtest.h>

namespace herald::delivery {
namespace {

store::Subscriber Ann() {
  store::Subscriber s;
  s.id = "pk1";
  s.environment_id = "env1";
  s.subscriber_id = "ann";
  s.profile.first_name = "Ann";
  store::SubscriberChannel hook;
  hook.id = "ch1";
  hook.integration_id = "int1";
  hook.integration_identifier = "hook";
  hook.provider_id = "push-webhook";
  hook.tokens = {{"t1", "t1"}, {"t2", "t2", store::TokenStatus::kExpired}, {"t3", "t3"}};
  store::SubscriberChannel inactive = hook;
  inactive.id = "ch2";
  inactive.integration_id = "int2";
  inactive.integration_active = false;
  s.channels = {hook, inactive};
  return s;
}

store::Workflow Flow() {
  store::Workflow w;
  w.id = "wf1";
  w.workflow_id = "order";
  w.steps = {{"st1",
              "push",
              "Push",
              "push",
              {{"subject", "Hi {{subscriber.firstName}}"}, {"body", "Order {{payload.orderId}}"}}}};
  return w;
}

TEST(PlannerTest, RendersOnceAndEmitsOneMessagePerActiveToken) {
  tmpl::TemplateCache cache;
  store::MessagePlanner plan = MakePlanner(cache, {{"env1", "org1"}});
  store::Notification n;
  n.payload = {{"orderId", 7}};
  auto messages = plan(Flow(), Ann(), n, Json::object());
  ASSERT_TRUE(messages.ok());
  ASSERT_EQ(messages->size(), 2u);  // t2 expired, the inactive integration skipped
  const store::Message& m = (*messages)[0];
  EXPECT_EQ(m.device_token, "t1");
  EXPECT_EQ(m.title, "Hi Ann");
  EXPECT_EQ(m.content, "Order 7");
  EXPECT_EQ(m.channel_pk, "ch1");
  Json payload = Json::parse(m.payload_json);
  EXPECT_EQ(payload["orderId"], 7);
  EXPECT_EQ(payload["subscriber"]["subscriberId"], "ann");
  EXPECT_EQ(payload["subscriber"]["_organizationId"], "org1");
  EXPECT_EQ(payload["step"]["digest"], false);
  // Novu's key order, {...payload, subscriber, step}, kept in the encoded text.
  EXPECT_EQ(m.payload_json.rfind("{\"orderId\":7,\"subscriber\":{", 0), 0u) << m.payload_json;
  EXPECT_TRUE(m.payload_json.ends_with(",\"step\":{\"digest\":false}}")) << m.payload_json;
  EXPECT_EQ((*messages)[1].payload_json, m.payload_json);
  EXPECT_EQ((*messages)[1].device_token, "t3");
}

TEST(PlannerTest, PayloadKeysNamedSubscriberOrStepGiveWayToNovus) {
  tmpl::TemplateCache cache;
  store::MessagePlanner plan = MakePlanner(cache, {{"env1", "org1"}});
  store::Notification n;
  n.payload = {{"b", 1}, {"step", "mine"}, {"a", {{"x", true}}}, {"subscriber", "mine"}};
  auto messages = plan(Flow(), Ann(), n, Json::object());
  ASSERT_TRUE(messages.ok());
  ASSERT_FALSE(messages->empty());
  const std::string& text = (*messages)[0].payload_json;
  EXPECT_EQ(text.rfind(R"({"a":{"x":true},"b":1,"subscriber":{)", 0), 0u) << text;
  EXPECT_TRUE(text.ends_with(R"(,"step":{"digest":false}})")) << text;
  EXPECT_EQ(Json::parse(text)["subscriber"]["subscriberId"], "ann");
}

TEST(PlannerTest, AnEmptyPayloadCarriesOnlyNovusKeys) {
  tmpl::TemplateCache cache;
  store::MessagePlanner plan = MakePlanner(cache, {{"env1", "org1"}});
  auto messages = plan(Flow(), Ann(), store::Notification{}, Json::object());
  ASSERT_TRUE(messages.ok());
  ASSERT_FALSE(messages->empty());
  const std::string& text = (*messages)[0].payload_json;
  EXPECT_EQ(text.rfind(R"({"subscriber":{)", 0), 0u) << text;
  EXPECT_EQ(Json::parse(text).size(), 2u) << text;
}

// The payload as the trigger sent it (order and number forms kept) comes first; the sorted Json is
// used only without it. Both forms have their subscriber and step at the end.
TEST(PlannerTest, ThePayloadAsSentKeepsItsOrder) {
  tmpl::TemplateCache cache;
  store::MessagePlanner plan = MakePlanner(cache, {{"env1", "org1"}});
  store::Notification n;
  n.payload = {{"zeta", 1}, {"alpha", 2.5}};
  n.payload_text = R"({"zeta":1,"alpha":2.5})";
  auto as_sent = plan(Flow(), Ann(), n, Json::object());
  ASSERT_TRUE(as_sent.ok() && !as_sent->empty());
  EXPECT_EQ((*as_sent)[0].payload_json.rfind(R"({"zeta":1,"alpha":2.5,"subscriber":{)", 0), 0u)
      << (*as_sent)[0].payload_json;
  n.payload_text.clear();
  auto sorted = plan(Flow(), Ann(), n, Json::object());
  ASSERT_TRUE(sorted.ok() && !sorted->empty());
  EXPECT_EQ((*sorted)[0].payload_json.rfind(R"({"alpha":2.5,"zeta":1,"subscriber":{)", 0), 0u)
      << (*sorted)[0].payload_json;
  EXPECT_EQ(Json::parse((*as_sent)[0].payload_json), Json::parse((*sorted)[0].payload_json));

  // A payload key named subscriber or step keeps its place and takes Novu's value, as
  // JavaScript's {...payload, subscriber, step} does (text printed by Node 20, with S = the
  // subscriber document).
  n.payload_text = std::string(R"({"7":true,"zeta":1,"step":)") + store::TriggerRequest::kStepSlot +
                   R"(,"subscriber":)" + store::TriggerRequest::kSubscriberSlot +
                   R"(,"alpha":2.5})";
  auto slots = plan(Flow(), Ann(), n, Json::object());
  ASSERT_TRUE(slots.ok() && !slots->empty());
  const std::string& text = (*slots)[0].payload_json;
  std::size_t at = text.find(R"("subscriber":{)");
  ASSERT_NE(at, std::string::npos) << text;
  std::size_t end = text.find(R"(,"alpha":2.5})");
  ASSERT_NE(end, std::string::npos) << text;
  const std::string document = text.substr(at + 13, end - at - 13);
  EXPECT_EQ(text, R"({"7":true,"zeta":1,"step":{"digest":false},"subscriber":)" + document +
                      R"(,"alpha":2.5})");
  EXPECT_EQ(Json::parse(document)["subscriberId"], Ann().subscriber_id);
}

// What the planner derives from a subscriber is reused only for the same nonzero snapshot, which
// the store promises never changes.
TEST(PlannerTest, SubscriberDocumentsAreReusedForTheSameSnapshotOnly) {
  tmpl::TemplateCache cache;
  store::MessagePlanner plan = MakePlanner(cache, {{"env1", "org1"}});
  auto first_of = [&](const store::Subscriber& s) {
    auto messages = plan(Flow(), s, store::Notification{}, Json::object());
    EXPECT_TRUE(messages.ok());
    const store::Message& m = messages->at(0);
    return m.title + " " +
           Json::parse(m.payload_json)["subscriber"]["firstName"].get<std::string>();
  };
  store::Subscriber ann = Ann();
  EXPECT_EQ(first_of(ann), "Hi Ann Ann");
  ann.profile.first_name = "Bo";  // snapshot 0: never reused
  EXPECT_EQ(first_of(ann), "Hi Bo Bo");
  ann.snapshot = 7;
  EXPECT_EQ(first_of(ann), "Hi Bo Bo");
  store::Subscriber same = ann;  // the store never changes a snapshot: this shows the reuse
  same.profile.first_name = "Cy";
  EXPECT_EQ(first_of(same), "Hi Bo Bo");
  same.snapshot = 8;
  EXPECT_EQ(first_of(same), "Hi Cy Cy");
}

TEST(PlannerTest, OverrideTokensReplaceTheSubscribersTokens) {
  tmpl::TemplateCache cache;
  store::MessagePlanner plan = MakePlanner(cache, {});
  Json overrides = {
      {"providers", {{"push-webhook", {{"deviceTokens", {"ov-1"}}, {"sound", "a"}}}}}};
  auto messages = plan(Flow(), Ann(), {}, overrides);
  ASSERT_TRUE(messages.ok());
  ASSERT_EQ(messages->size(), 1u);
  EXPECT_EQ((*messages)[0].device_token, "ov-1");
  EXPECT_FALSE((*messages)[0].channel_pk.has_value());
  EXPECT_EQ((*messages)[0].overrides["sound"], "a");
}

TEST(PlannerTest, OverridePrecedenceStepOverProvidersOverTopLevel) {
  Json overrides = {
      {"push-webhook", {{"sound", "top"}, {"badge", 1}, {"color", "red"}}},
      {"providers", {{"push-webhook", {{"sound", "providers"}, {"badge", 2}}}}},
      {"steps", {{"push", {{"providers", {{"push-webhook", {{"sound", "step"}}}}}}}}}};
  Json merged = MergedOverrides(overrides, "push-webhook", "push");
  EXPECT_EQ(merged["sound"], "step");
  EXPECT_EQ(merged["badge"], 2);
  EXPECT_EQ(merged["color"], "red");
  EXPECT_EQ(MergedOverrides(overrides, "push-webhook", "other")["sound"], "providers");
  EXPECT_TRUE(MergedOverrides(overrides, "fcm", "push").empty());
}

}  // namespace
}  // namespace herald::delivery
