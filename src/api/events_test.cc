#include <gtest/gtest.h>

#include "api/api.h"
#include "server/error_reply.h"

namespace herald::api {
namespace {

// The 201 of a trigger is written as text; it must be the bytes the JSON document gives.
TEST(TriggerAckTest, ReplyIsTheDataDocumentOfTheAck) {
  const std::vector<TriggerAck> acks = {
      {"processed", "2b0e9c3e-7d0b-4c8e-9a59-6c3f4f1e0c11"},
      {"trigger_not_active", std::nullopt},
      {"processed", std::string("quote\" back\\ slash / tab\t nl\n nul") + '\0' + " \x01 é €"},
      {"no_tenant_found", ""},
      {"processed", "bad utf-8 \xff\xfe"},
  };
  for (const TriggerAck& ack : acks) {
    server::Reply reply = AckReply(ack);
    EXPECT_EQ(reply.status, 201);
    EXPECT_EQ(reply.body, server::DataReply(AckJson(ack), 201).body);
    Json parsed = Json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(parsed.is_object()) << reply.body;
    EXPECT_EQ(parsed["data"]["acknowledged"], true);
    EXPECT_EQ(parsed["data"]["status"], std::string(ack.status));
    EXPECT_EQ(parsed["data"].contains("transactionId"), ack.transaction_id.has_value());
  }
}

}  // namespace
}  // namespace herald::api
