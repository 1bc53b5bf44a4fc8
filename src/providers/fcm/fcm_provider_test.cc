// The FCM HTTP v1 adapter against protocols.md §1: the OAuth JWT-bearer exchange, the send
// request and the google.rpc.Status error model of §1.7.
#include "providers/fcm/fcm_provider.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <string>

#include "core/time.h"
#include "crypto/crypto.h"
#include "crypto/jwt.h"
#include "crypto/keys.h"
#include "providers/registry.h"
#include "providers/provider_test_util.h"
#include "providers/spec_test_util.h"

namespace herald::providers {
namespace {

using test::Failure;
using test::HeaderOf;
using test::Reply;

constexpr const char* kSendUrl = "https://fcm.googleapis.com/v1/projects/herald-demo/messages:send";
constexpr const char* kGrantPrefix =
    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
constexpr const char* kFcmError = "type.googleapis.com/google.firebase.fcm.v1.FcmError";

Json Credentials(Json account = test::ServiceAccount()) {
  return {{"serviceAccount", DumpJson(account)}};
}

std::unique_ptr<Provider> Make(const Json& credentials = test::ValidCredentials("fcm")) {
  return test::MakeProvider("fcm", credentials);
}

PushMessage Message() {
  PushMessage m;
  m.message_id = "65f0c0ffee0123456789abcd";
  m.device_token = "fcm-token:APA91bH_x-y";
  m.title = "Hello Ann";
  m.content = "Your order shipped";
  m.payload_json =
      R"({"orderId":7,"nested":{"a":[1,2]},"flag":true,"name":"x","subscriber":{"subscriberId":"s1"},"step":{"digest":false}})";
  return m;
}

AuthToken Token() { return AuthToken{"ya29.fake-token", NowMs(), NowMs() + 3000000}; }

http::Request Build(const Provider& provider, const PushMessage& m) {
  Result<http::Request> request = provider.BuildRequest(m, Token());
  EXPECT_TRUE(request.ok()) << (request.ok() ? "" : request.status().message());
  return request.ok() ? *request : http::Request{};
}

// The FCM Message of a send request.
Json MessageOf(const Provider& provider, const PushMessage& m) {
  http::Request request = Build(provider, m);
  Json body = Json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  EXPECT_TRUE(body.is_object()) << request.body;
  EXPECT_EQ(body.size(), 1u) << request.body;
  return body.is_object() ? body["message"] : Json();
}

// A google.rpc.Status body (protocols.md §1.7).
std::string RpcStatus(int code, const char* status, const char* message, Json details = nullptr) {
  Json error = {{"code", code}, {"message", message}, {"status", status}};
  if (!details.is_null()) error["details"] = std::move(details);
  return DumpJson(Json{{"error", std::move(error)}});
}

Json FcmErrorDetail(const char* code) { return {{"@type", kFcmError}, {"errorCode", code}}; }

Json BadRequestDetail(const char* field) {
  return {{"@type", "type.googleapis.com/google.rpc.BadRequest"},
          {"fieldViolations", Json::array({{{"field", field}, {"description", "Invalid value"}}})}};
}

// ---- OAuth 2.0 JWT-bearer grant ---------------------------------------------------------------

TEST(FcmProviderTest, AuthenticatorExchangesAServiceAccountAssertion) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  const Authenticator* auth = provider->auth();
  ASSERT_NE(auth, nullptr);
  EXPECT_EQ(auth->kind(), Authenticator::Kind::kExchanged);
  EXPECT_EQ(auth->Scope(Message()), "");
  EXPECT_FALSE(auth->CredentialKey().empty());
  EXPECT_EQ(auth->CredentialKey().find("BEGIN"), std::string::npos);
  EXPECT_EQ(auth->CredentialKey(), Make()->auth()->CredentialKey());
  Json other = test::ServiceAccount();
  other["client_email"] = "other@herald-demo.iam.gserviceaccount.com";
  EXPECT_NE(auth->CredentialKey(), Make(Credentials(other))->auth()->CredentialKey());
  EXPECT_TRUE(provider->probe_uses_token());
  EXPECT_FALSE(auth->Mint("", NowMs()).ok());  // exchanged, never minted
}

TEST(FcmProviderTest, ExchangeRequestCarriesAnRs256Assertion) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  const EpochMs now = NowMs();
  Result<http::Request> request = provider->auth()->BuildExchange(now);
  ASSERT_TRUE(request.ok()) << request.status().message();
  EXPECT_EQ(request->method, "POST");
  EXPECT_EQ(request->url, "https://oauth2.googleapis.com/token");
  EXPECT_EQ(HeaderOf(*request, "Content-Type"), "application/x-www-form-urlencoded");
  ASSERT_EQ(request->body.rfind(kGrantPrefix, 0), 0u) << request->body;
  const std::string assertion = request->body.substr(std::string(kGrantPrefix).size());
  EXPECT_EQ(assertion.find_first_not_of(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
            std::string::npos);

  Result<crypto::DecodedJwt> jwt = crypto::DecodeJwt(assertion);
  ASSERT_TRUE(jwt.ok());
  Json header = Json::parse(jwt->header_json);
  EXPECT_EQ(header["alg"], "RS256");
  Json claims = Json::parse(jwt->claims_json);
  EXPECT_EQ(claims["iss"], "push@herald-demo.iam.gserviceaccount.com");
  ASSERT_TRUE(claims["scope"].is_string());
  EXPECT_NE(
      claims["scope"].get<std::string>().find("https://www.googleapis.com/auth/firebase.messaging"),
      std::string::npos);
  EXPECT_EQ(claims["aud"], "https://oauth2.googleapis.com/token");
  ASSERT_TRUE(claims["iat"].is_number_integer());
  ASSERT_TRUE(claims["exp"].is_number_integer());
  EXPECT_EQ(claims["iat"].get<std::int64_t>(), now / 1000);
  EXPECT_NEAR(static_cast<double>(claims["iat"].get<std::int64_t>()),
              static_cast<double>(std::time(nullptr)), 5.0);
  EXPECT_EQ(claims["exp"].get<std::int64_t>() - claims["iat"].get<std::int64_t>(), 3600);
  EXPECT_FALSE(claims.contains("sub"));

  Result<crypto::PrivateKey> key = crypto::PrivateKey::FromPem(test::RsaPem());
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(jwt->signature.size(), 256u);  // 2048-bit key
  EXPECT_TRUE(crypto::VerifyRs256(key->PublicKeyPem(), jwt->signing_input, jwt->signature));
  std::string tampered = jwt->signing_input;
  tampered[tampered.size() / 2] ^= 1;
  EXPECT_FALSE(crypto::VerifyRs256(key->PublicKeyPem(), tampered, jwt->signature));
}

TEST(FcmProviderTest, ExchangeGoesToTheAccountsTokenUri) {
  Json account = test::ServiceAccount();
  account["token_uri"] = "https://www.googleapis.com/oauth2/v4/token";
  auto provider = Make(Credentials(account));
  ASSERT_NE(provider, nullptr);
  Result<http::Request> request = provider->auth()->BuildExchange(NowMs());
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(request->url, "https://www.googleapis.com/oauth2/v4/token");
  Result<crypto::DecodedJwt> jwt =
      crypto::DecodeJwt(request->body.substr(std::string(kGrantPrefix).size()));
  ASSERT_TRUE(jwt.ok());
  EXPECT_EQ(Json::parse(jwt->claims_json)["aud"], "https://www.googleapis.com/oauth2/v4/token");
  // A traditional-form RSA key works as well.
  account["private_key"] = test::RsaPem(/*pkcs8=*/false);
  ASSERT_NE(Make(Credentials(account)), nullptr);
  EXPECT_TRUE(Make(Credentials(account))->auth()->BuildExchange(NowMs()).ok());
}

TEST(FcmProviderTest, ReadsTheAccessToken) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  const EpochMs now = NowMs();
  Result<AuthToken> token = provider->auth()->ReadExchange(
      Reply(200, R"({"access_token":"ya29.c.abc","expires_in":3599,"token_type":"Bearer"})"), now);
  ASSERT_TRUE(token.ok()) << token.status().message();
  EXPECT_EQ(token->value, "ya29.c.abc");
  EXPECT_EQ(token->issued_at, now);
  EXPECT_EQ(token->refresh_at, now + (3599 - 300) * 1000);  // five minutes early

  // A short-lived token is still kept for a while.
  Result<AuthToken> brief = provider->auth()->ReadExchange(
      Reply(200, R"({"access_token":"t","expires_in":100,"token_type":"Bearer"})"), now);
  ASSERT_TRUE(brief.ok());
  EXPECT_GT(brief->refresh_at, now);
  EXPECT_LT(brief->refresh_at, now + 100 * 1000);
}

TEST(FcmProviderTest, RefusedExchangeCarriesTheOAuthError) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  const Authenticator& auth = *provider->auth();
  Result<AuthToken> refused = auth.ReadExchange(
      Reply(400, R"({"error":"invalid_grant","error_description":"Invalid JWT Signature."})"),
      NowMs());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(ReasonOf(refused.status(), ""), "invalid_grant");
  EXPECT_NE(refused.status().code(), Code::kUnavailable);
  EXPECT_NE(refused.status().message().find("Invalid JWT Signature."), std::string::npos);

  Result<AuthToken> scope =
      auth.ReadExchange(Reply(401, R"({"error":"unauthorized_client"})"), NowMs());
  ASSERT_FALSE(scope.ok());
  EXPECT_EQ(ReasonOf(scope.status(), ""), "unauthorized_client");
  EXPECT_NE(scope.status().code(), Code::kUnavailable);

  // A 200 without a token is no token.
  Result<AuthToken> empty = auth.ReadExchange(Reply(200, R"({"token_type":"Bearer"})"), NowMs());
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().code(), Code::kUnavailable);
  EXPECT_FALSE(auth.ReadExchange(Reply(200, "not json"), NowMs()).ok());
  EXPECT_FALSE(
      auth.ReadExchange(Reply(200, R"({"access_token":"t","expires_in":0})"), NowMs()).ok());
}

TEST(FcmProviderTest, ExchangeThatMayWorkLaterIsUnavailable) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  const Authenticator& auth = *provider->auth();
  for (int status : {503, 500, 429}) {
    Result<AuthToken> token = auth.ReadExchange(Reply(status, "busy"), NowMs());
    ASSERT_FALSE(token.ok()) << status;
    EXPECT_EQ(token.status().code(), Code::kUnavailable) << status;
  }
  for (http::TransportError error : {http::TransportError::kTimeout, http::TransportError::kConnect,
                                     http::TransportError::kDns}) {
    Result<AuthToken> token = auth.ReadExchange(Failure(error), NowMs());
    ASSERT_FALSE(token.ok());
    EXPECT_EQ(token.status().code(), Code::kUnavailable) << http::TransportErrorName(error);
  }
}

// ---- the send request -------------------------------------------------------------------------

TEST(FcmProviderTest, SendRequestLineAndHeaders) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  http::Request request = Build(*provider, Message());
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.url, kSendUrl);
  EXPECT_TRUE(request.http2_prior_knowledge);
  int count = 0;
  EXPECT_EQ(HeaderOf(request, "authorization", &count), "Bearer ya29.fake-token");
  EXPECT_EQ(count, 1);
  EXPECT_EQ(HeaderOf(request, "content-type").rfind("application/json", 0), 0u);

  Json credentials = test::ValidCredentials("fcm");
  credentials["baseUrl"] = "http://127.0.0.1:9100/";
  EXPECT_EQ(Build(*Make(credentials), Message()).url,
            "http://127.0.0.1:9100/v1/projects/herald-demo/messages:send");
  Json account = test::ServiceAccount();
  account["project_id"] = "other-proj";
  EXPECT_EQ(Build(*Make(Credentials(account)), Message()).url,
            "https://fcm.googleapis.com/v1/projects/other-proj/messages:send");
  EXPECT_TRUE(NewFcmProvider(test::ValidCredentials("fcm")).ok());
  EXPECT_FALSE(NewFcmProvider(Json{{"serviceAccount", "{}"}}).ok());
}

TEST(FcmProviderTest, NotificationMessage) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  Json message = MessageOf(*provider, Message());
  // No trigger payload in a notification message: only what overrides.data gives.
  EXPECT_EQ(message,
            (Json{{"token", "fcm-token:APA91bH_x-y"},
                  {"notification", {{"title", "Hello Ann"}, {"body", "Your order shipped"}}}}));
}

TEST(FcmProviderTest, DataValuesAreStrings) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  PushMessage m = Message();
  m.overrides = {{"data",
                  {{"s", "text"},
                   {"n", 7},
                   {"f", 1.5},
                   {"b", true},
                   {"o", {{"a", 1}}},
                   {"arr", Json::array({1, "x"})}}}};
  Json message = MessageOf(*provider, m);
  EXPECT_EQ(message["data"], (Json{{"s", "text"},
                                   {"n", "7"},
                                   {"f", "1.5"},
                                   {"b", "true"},
                                   {"o", R"({"a":1})"},
                                   {"arr", R"([1,"x"])"}}));
  for (const auto& [key, value] : message["data"].items()) {
    EXPECT_TRUE(value.is_string()) << key;
  }
  EXPECT_EQ(message["notification"]["title"], "Hello Ann");
}

TEST(FcmProviderTest, PlatformBlocksFromOverrides) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  PushMessage m = Message();
  Json android = {{"priority", "high"},
                  {"ttl", "3600s"},
                  {"collapse_key", "c1"},
                  {"notification", {{"sound", "default"}, {"channel_id", "ch"}}}};
  Json apns = {{"headers", {{"apns-priority", "10"}}},
               {"payload", {{"aps", {{"badge", 3}, {"sound", "default"}}}}}};
  Json webpush = {{"headers", {{"TTL", "3600"}, {"Urgency", "high"}}},
                  {"notification", {{"icon", "https://example.com/icon.png"}}},
                  {"fcmOptions", {{"link", "https://example.com/x"}}}};
  m.overrides = {{"android", android},
                 {"apns", apns},
                 {"webPush", webpush},
                 {"fcmOptions", {{"analytics_label", "lbl"}}},
                 {"image", "https://example.com/i.png"}};
  Json message = MessageOf(*provider, m);
  EXPECT_EQ(message["android"], android);
  EXPECT_EQ(message["apns"], apns);
  EXPECT_EQ(message["webpush"], webpush);
  EXPECT_EQ(message["fcm_options"], (Json{{"analytics_label", "lbl"}}));
  EXPECT_EQ(message["notification"]["image"], "https://example.com/i.png");
  EXPECT_FALSE(message.contains("webPush"));
  EXPECT_FALSE(message.contains("fcmOptions"));
  EXPECT_FALSE(message.contains("image"));

  m.overrides = {{"webpush", webpush}, {"imageUrl", "https://example.com/j.png"}};
  message = MessageOf(*provider, m);
  EXPECT_EQ(message["webpush"], webpush);
  EXPECT_EQ(message["notification"]["image"], "https://example.com/j.png");

  for (Json bad : {Json{{"android", "x"}}, Json{{"apns", Json::array()}}, Json{{"webPush", 1}},
                   Json{{"fcmOptions", true}}, Json{{"data", Json::array()}}, Json{{"data", "x"}},
                   Json{{"image", 1}}}) {
    m.overrides = bad;
    EXPECT_EQ(test::RefusalReason(*provider, m, Token()), "INVALID_OVERRIDES") << bad.dump();
  }
}

TEST(FcmProviderTest, DataMessageCarriesTheTriggerPayload) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  PushMessage m = Message();
  m.overrides = {{"type", "data"}, {"data", {{"extra", 1}}}};
  Json message = MessageOf(*provider, m);
  EXPECT_FALSE(message.contains("notification"));
  EXPECT_EQ(message["token"], "fcm-token:APA91bH_x-y");
  EXPECT_EQ(message["data"], (Json{{"orderId", "7"},
                                   {"nested", R"({"a":[1,2]})"},
                                   {"flag", "true"},
                                   {"name", "x"},
                                   {"title", "Hello Ann"},
                                   {"body", "Your order shipped"},
                                   {"message", "Your order shipped"},
                                   {"extra", "1"}}));
}

// ---- replies (protocols.md §1.6, §1.7) ---------------------------------------------------------

TEST(FcmProviderTest, SuccessCarriesTheMessageName) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  Outcome ok = provider->Classify(Reply(
      200, R"({"name":"projects/herald-demo/messages/0:1500415314455276%31bd1c9631bd1c96"})"));
  EXPECT_EQ(ok.verdict, Verdict::kDelivered);
  EXPECT_EQ(ok.provider_message_id,
            "projects/herald-demo/messages/0:1500415314455276%31bd1c9631bd1c96");
  EXPECT_TRUE(ok.reason.empty());
  Outcome odd = provider->Classify(Reply(200, "not json"));
  EXPECT_EQ(odd.verdict, Verdict::kDelivered);
  EXPECT_EQ(odd.provider_message_id, "");
}

TEST(FcmProviderTest, UnregisteredRemovesTheToken) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  Outcome gone =
      provider->Classify(Reply(404, RpcStatus(404, "NOT_FOUND", "Requested entity was not found.",
                                              Json::array({FcmErrorDetail("UNREGISTERED")}))));
  EXPECT_EQ(gone.verdict, Verdict::kFailedRemoveToken);
  EXPECT_TRUE(gone.unsubscribed);
  EXPECT_EQ(gone.reason, "UNREGISTERED");
  EXPECT_FALSE(gone.token_invalid_since.has_value());
  // error.status when no FcmError detail is given (firebase-admin's order, §1.7).
  Outcome by_status = provider->Classify(
      Reply(404, RpcStatus(404, "NOT_FOUND", "Requested entity was not found.")));
  EXPECT_EQ(by_status.verdict, Verdict::kFailedRemoveToken);
  EXPECT_EQ(by_status.reason, "NOT_FOUND");
  // A 404 that is not FCM's JSON says nothing about the token.
  EXPECT_EQ(provider->Classify(Reply(404, "<html>Not Found</html>")).verdict, Verdict::kFailed);
}

TEST(FcmProviderTest, InvalidArgumentAboutTheTokenRemovesIt) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  Outcome bad_token = provider->Classify(Reply(
      400,
      RpcStatus(
          400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token",
          Json::array({FcmErrorDetail("INVALID_ARGUMENT"), BadRequestDetail("message.token")}))));
  EXPECT_EQ(bad_token.verdict, Verdict::kFailedRemoveToken);
  EXPECT_FALSE(bad_token.unsubscribed);
  EXPECT_EQ(bad_token.reason, "INVALID_ARGUMENT");

  // Without the FcmError detail too.
  EXPECT_EQ(provider
                ->Classify(Reply(400, RpcStatus(400, "INVALID_ARGUMENT", "bad token",
                                                Json::array({BadRequestDetail("message.token")}))))
                .verdict,
            Verdict::kFailedRemoveToken);

  // Any other invalid argument is the message's fault: keep the token.
  Outcome bad_data = provider->Classify(
      Reply(400, RpcStatus(400, "INVALID_ARGUMENT",
                           "Invalid value at 'message.data[0].value' (TYPE_STRING), 7",
                           Json::array({FcmErrorDetail("INVALID_ARGUMENT"),
                                        BadRequestDetail("message.data[0].value")}))));
  EXPECT_EQ(bad_data.verdict, Verdict::kFailed);
  EXPECT_EQ(bad_data.reason, "INVALID_ARGUMENT");
  // Free text never decides: the message names the token, the detail does not.
  EXPECT_EQ(provider
                ->Classify(Reply(400, RpcStatus(400, "INVALID_ARGUMENT",
                                                "The registration token is not a valid FCM "
                                                "registration token",
                                                Json::array({FcmErrorDetail("INVALID_ARGUMENT")}))))
                .verdict,
            Verdict::kFailed);
  EXPECT_EQ(provider->Classify(Reply(400, RpcStatus(400, "INVALID_ARGUMENT", "bad"))).verdict,
            Verdict::kFailed);
}

TEST(FcmProviderTest, CredentialProblemsAreConfiguration) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  Outcome mismatch = provider->Classify(
      Reply(403, RpcStatus(403, "PERMISSION_DENIED", "SenderId mismatch",
                           Json::array({FcmErrorDetail("SENDER_ID_MISMATCH")}))));
  EXPECT_EQ(mismatch.verdict, Verdict::kFailedConfig);
  EXPECT_EQ(mismatch.reason, "SENDER_ID_MISMATCH");

  Outcome third_party = provider->Classify(
      Reply(401, RpcStatus(401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service",
                           Json::array({FcmErrorDetail("THIRD_PARTY_AUTH_ERROR")}))));
  EXPECT_EQ(third_party.verdict, Verdict::kFailedConfig);
  EXPECT_EQ(third_party.reason, "THIRD_PARTY_AUTH_ERROR");
  EXPECT_EQ(provider
                ->Classify(Reply(401, RpcStatus(401, "UNAUTHENTICATED", "x",
                                                Json::array({FcmErrorDetail("APNS_AUTH_ERROR")}))))
                .verdict,
            Verdict::kFailedConfig);

  Outcome denied = provider->Classify(
      Reply(403, RpcStatus(403, "PERMISSION_DENIED",
                           "Permission 'cloudmessaging.messages.create' denied on resource")));
  EXPECT_EQ(denied.verdict, Verdict::kFailedConfig);
  EXPECT_EQ(denied.reason, "PERMISSION_DENIED");
  // A 403 whose body is not FCM's JSON is a permission problem as well (§1.7: non-JSON bodies
  // are mapped by status, 401/403 authentication).
  Outcome html = provider->Classify(Reply(403, "<html>Forbidden</html>"));
  EXPECT_EQ(html.verdict, Verdict::kFailedConfig);
  EXPECT_EQ(html.reason, "HTTP_403");
}

TEST(FcmProviderTest, StaleAccessTokenIsRefreshed) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  Outcome stale = provider->Classify(Reply(
      401, RpcStatus(401, "UNAUTHENTICATED",
                     "Request had invalid authentication credentials. Expected OAuth 2 access "
                     "token, login cookie or other valid authentication credential.")));
  EXPECT_EQ(stale.verdict, Verdict::kRefreshAuth);
  EXPECT_EQ(stale.reason, "UNAUTHENTICATED");
  EXPECT_EQ(provider->Classify(Reply(401, "<html>Unauthorized</html>")).verdict,
            Verdict::kRefreshAuth);
}

std::string HttpDate(std::time_t at) {
  char text[64];
  std::tm tm{};
  gmtime_r(&at, &tm);
  std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return text;
}

TEST(FcmProviderTest, QuotaExceededWaitsForRetryAfterOrAMinute) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  const std::string quota = RpcStatus(
      429, "RESOURCE_EXHAUSTED", "Quota exceeded",
      Json::array(
          {FcmErrorDetail("QUOTA_EXCEEDED"),
           {{"@type", "type.googleapis.com/google.rpc.QuotaFailure"},
            {"violations", Json::array({{{"subject", "project"}, {"description", "x"}}})}}}));
  Outcome with_header = provider->Classify(Reply(429, quota, {{"retry-after", "30"}}));
  EXPECT_EQ(with_header.verdict, Verdict::kRetry);
  EXPECT_EQ(with_header.reason, "QUOTA_EXCEEDED");
  ASSERT_TRUE(with_header.retry_after.has_value());
  EXPECT_EQ(with_header.retry_after->count(), 30000);

  Outcome dated =
      provider->Classify(Reply(429, quota, {{"retry-after", HttpDate(std::time(nullptr) + 120)}}));
  ASSERT_TRUE(dated.retry_after.has_value());
  EXPECT_NEAR(static_cast<double>(dated.retry_after->count()), 120000.0, 3000.0);

  Outcome without = provider->Classify(Reply(429, quota));
  EXPECT_EQ(without.verdict, Verdict::kRetry);
  ASSERT_TRUE(without.retry_after.has_value());
  EXPECT_EQ(without.retry_after->count(), 60000);

  // RESOURCE_EXHAUSTED without the FcmError detail is the same quota.
  Outcome bare = provider->Classify(Reply(429, RpcStatus(429, "RESOURCE_EXHAUSTED", "Quota")));
  EXPECT_EQ(bare.verdict, Verdict::kRetry);
  ASSERT_TRUE(bare.retry_after.has_value());
  EXPECT_GE(bare.retry_after->count(), 60000);
}

TEST(FcmProviderTest, ServerErrorsAreRetried) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  Outcome unavailable = provider->Classify(
      Reply(503,
            RpcStatus(503, "UNAVAILABLE", "The service is currently unavailable.",
                      Json::array({FcmErrorDetail("UNAVAILABLE")})),
            {{"retry-after", "5"}}));
  EXPECT_EQ(unavailable.verdict, Verdict::kRetry);
  EXPECT_EQ(unavailable.reason, "UNAVAILABLE");
  ASSERT_TRUE(unavailable.retry_after.has_value());
  EXPECT_EQ(unavailable.retry_after->count(), 5000);
  EXPECT_FALSE(provider
                   ->Classify(Reply(503, RpcStatus(503, "UNAVAILABLE", "x",
                                                   Json::array({FcmErrorDetail("UNAVAILABLE")}))))
                   .retry_after.has_value());  // backoff

  Outcome internal =
      provider->Classify(Reply(500, RpcStatus(500, "INTERNAL", "Internal error encountered.",
                                              Json::array({FcmErrorDetail("INTERNAL")}))));
  EXPECT_EQ(internal.verdict, Verdict::kRetry);
  EXPECT_EQ(internal.reason, "INTERNAL");
  EXPECT_EQ(provider->Classify(Reply(502, "<html>Bad Gateway</html>")).verdict, Verdict::kRetry);
  EXPECT_EQ(provider->Classify(Reply(503, "")).verdict, Verdict::kRetry);
  // UNSPECIFIED_ERROR: by HTTP class.
  EXPECT_EQ(
      provider
          ->Classify(Reply(500, RpcStatus(500, "UNKNOWN", "x",
                                          Json::array({FcmErrorDetail("UNSPECIFIED_ERROR")}))))
          .verdict,
      Verdict::kRetry);
  EXPECT_EQ(
      provider
          ->Classify(Reply(400, RpcStatus(400, "FAILED_PRECONDITION", "x",
                                          Json::array({FcmErrorDetail("UNSPECIFIED_ERROR")}))))
          .verdict,
      Verdict::kFailed);

  EXPECT_EQ(provider->Classify(Failure(http::TransportError::kTimeout)).verdict, Verdict::kRetry);
  EXPECT_EQ(provider->Classify(Failure(http::TransportError::kConnect)).verdict, Verdict::kRetry);
  EXPECT_EQ(provider->Classify(Failure(http::TransportError::kProtocol)).reason,
            ClassifyTransport(Failure(http::TransportError::kProtocol)).reason);
}

// ---- connection test --------------------------------------------------------------------------

TEST(FcmProviderTest, ProbeIsAValidateOnlySend) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  Result<std::optional<http::Request>> probe = provider->BuildProbe(Token());
  ASSERT_TRUE(probe.ok());
  ASSERT_TRUE(probe->has_value());
  const http::Request& request = **probe;
  EXPECT_EQ(request.url, kSendUrl);
  EXPECT_EQ(HeaderOf(request, "authorization"), "Bearer ya29.fake-token");
  Json body = Json::parse(request.body);
  EXPECT_EQ(body["validate_only"], true);
  EXPECT_TRUE(body["message"]["token"].is_string());
  EXPECT_FALSE(body["message"].contains("notification"));

  ProbeResult invalid_token = provider->ReadProbe(
      Reply(400, RpcStatus(400, "INVALID_ARGUMENT",
                           "The registration token is not a valid FCM registration token",
                           Json::array({FcmErrorDetail("INVALID_ARGUMENT")}))));
  EXPECT_TRUE(invalid_token.ok);
  EXPECT_TRUE(invalid_token.reason.empty());
  EXPECT_TRUE(
      provider
          ->ReadProbe(Reply(400, RpcStatus(400, "INVALID_ARGUMENT", "x",
                                           Json::array({BadRequestDetail("message.token")}))))
          .ok);
  EXPECT_TRUE(
      provider->ReadProbe(Reply(200, R"({"name":"projects/herald-demo/messages/fake"})")).ok);

  ProbeResult unauthenticated =
      provider->ReadProbe(Reply(401, RpcStatus(401, "UNAUTHENTICATED", "bad token")));
  EXPECT_FALSE(unauthenticated.ok);
  EXPECT_FALSE(unauthenticated.reason.empty());
  EXPECT_FALSE(provider->ReadProbe(Reply(401)).ok);
  ProbeResult denied =
      provider->ReadProbe(Reply(403, RpcStatus(403, "PERMISSION_DENIED", "denied")));
  EXPECT_FALSE(denied.ok);
  EXPECT_EQ(denied.reason, "PERMISSION_DENIED");
  EXPECT_FALSE(provider->ReadProbe(Failure(http::TransportError::kTimeout)).ok);
}

}  // namespace
}  // namespace herald::providers
