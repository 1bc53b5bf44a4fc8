// The Web Push adapter against protocols.md §3 (RFC 8030 request, RFC 8291 encryption, RFC 8292
// VAPID): requests are built for a freshly generated browser subscription and decrypted with its
// private key; replies are hand-made.
#include "providers/web_push/web_push_provider.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <string>

#include "core/time.h"
#include "crypto/crypto.h"
#include "crypto/ece.h"
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

using crypto::Base64UrlDecode;
using crypto::Base64UrlEncode;

constexpr const char* kEndpoint = "https://push.example.net/push/sub-123?x=1";

// A browser's side of one subscription: the UA key pair and auth secret.
struct Browser {
  std::pair<std::string, std::string> keys = crypto::GenerateP256KeyPair();  // {private, public}
  std::string auth = test::RandomBytes(16);

  std::string Token(const std::string& endpoint = kEndpoint) const {
    OrderedJson token = {
        {"endpoint", endpoint},
        {"keys", {{"p256dh", Base64UrlEncode(keys.second)}, {"auth", Base64UrlEncode(auth)}}}};
    return token.dump();
  }
  Result<std::string> Decrypt(const std::string& body) const {
    return crypto::WebPushDecrypt(keys.first, auth, body);
  }
};

const Browser& TheBrowser() {
  static const Browser* browser = new Browser();
  return *browser;
}

Json Credentials() { return test::ValidCredentials("web-push"); }

std::unique_ptr<Provider> Make(const Json& credentials = Credentials()) {
  return test::MakeProvider("web-push", credentials);
}

PushMessage Message(const std::string& token = TheBrowser().Token()) {
  PushMessage m;
  m.message_id = "65f0c0ffee0123456789abcd";
  m.device_token = token;
  m.title = "Hello Ann";
  m.content = "Your order shipped \xc3\xbc";
  m.payload_json =
      R"({"orderId":7,"nested":{"a":[1,2]},"subscriber":{"subscriberId":"s1"},"step":{"digest":false}})";
  return m;
}

AuthToken Token() { return AuthToken{"header.claims.sig", NowMs(), NowMs() + 3600000}; }

// The JSON the service worker receives for `message`.
Json Decrypted(const Provider& provider, const PushMessage& message) {
  Result<http::Request> request = provider.BuildRequest(message, Token());
  EXPECT_TRUE(request.ok()) << (request.ok() ? "" : request.status().message());
  if (!request.ok()) return Json();
  Result<std::string> plaintext = TheBrowser().Decrypt(request->body);
  EXPECT_TRUE(plaintext.ok()) << (plaintext.ok() ? "" : plaintext.status().message());
  if (!plaintext.ok()) return Json();
  std::string error;
  std::optional<Json> json = ParseJson(*plaintext, &error);
  EXPECT_TRUE(json.has_value()) << error;
  return json.value_or(Json());
}

// ---- the request ------------------------------------------------------------------------------

TEST(WebPushProviderTest, CreatedBySpecAndByFactory) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  EXPECT_TRUE(NewWebPushProvider(Credentials()).ok());
  Json bad = Credentials();
  bad["secretKey"] = "not base64!";
  EXPECT_FALSE(NewWebPushProvider(bad).ok());
}

TEST(WebPushProviderTest, RequestGoesToTheEndpointWithRfc8030Headers) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  AuthToken token = Token();
  Result<http::Request> request = provider->BuildRequest(Message(), token);
  ASSERT_TRUE(request.ok()) << request.status().message();
  EXPECT_EQ(request->method, "POST");
  EXPECT_EQ(request->url, kEndpoint);
  int count = 0;
  EXPECT_EQ(HeaderOf(*request, "TTL", &count), "2419200");  // web-push's default, four weeks
  EXPECT_EQ(count, 1);
  EXPECT_EQ(HeaderOf(*request, "Content-Encoding", &count), "aes128gcm");
  EXPECT_EQ(count, 1);
  EXPECT_EQ(HeaderOf(*request, "Authorization", &count),
            "vapid t=" + token.value + ", k=" + Credentials()["apiKey"].get<std::string>());
  EXPECT_EQ(count, 1);
  HeaderOf(*request, "Urgency", &count);
  EXPECT_EQ(count, 0);
  HeaderOf(*request, "Topic", &count);
  EXPECT_EQ(count, 0);
  // The body is one aes128gcm record: 86-byte header (salt, rs = 4096, idlen = 65, keyid).
  ASSERT_GT(request->body.size(), 86u + 16u);
  EXPECT_EQ(request->body.substr(16, 5), std::string("\x00\x00\x10\x00\x41", 5));
  EXPECT_TRUE(crypto::IsP256PublicPoint(request->body.substr(21, 65)));
  EXPECT_NE(request->body.substr(21, 65), TheBrowser().keys.second);
  // Each message gets its own salt and key pair.
  Result<http::Request> again = provider->BuildRequest(Message(), token);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->body.substr(0, 86), request->body.substr(0, 86));
}

TEST(WebPushProviderTest, TtlUrgencyAndTopicFromOverrides) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  PushMessage m = Message();
  m.overrides = {{"ttl", 60}, {"urgency", "high"}, {"topic", "order-7_Up"}};
  Result<http::Request> request = provider->BuildRequest(m, Token());
  ASSERT_TRUE(request.ok()) << request.status().message();
  EXPECT_EQ(HeaderOf(*request, "TTL"), "60");
  EXPECT_EQ(HeaderOf(*request, "Urgency"), "high");
  EXPECT_EQ(HeaderOf(*request, "Topic"), "order-7_Up");

  for (const char* urgency : {"very-low", "low", "normal", "high"}) {
    m.overrides = {{"urgency", urgency}};
    Result<http::Request> r = provider->BuildRequest(m, Token());
    ASSERT_TRUE(r.ok()) << urgency;
    EXPECT_EQ(HeaderOf(*r, "Urgency"), urgency);
  }
  m.overrides = {{"ttl", 0}};  // deliver only if the browser is connected now
  EXPECT_EQ(HeaderOf(*provider->BuildRequest(m, Token()), "TTL"), "0");
  m.overrides = {{"ttl", 2592000}};
  EXPECT_EQ(HeaderOf(*provider->BuildRequest(m, Token()), "TTL"), "2592000");
  m.overrides = {{"topic", std::string(32, 'a')}};
  EXPECT_EQ(HeaderOf(*provider->BuildRequest(m, Token()), "Topic"), std::string(32, 'a'));
  m.overrides = {{"ttl", nullptr}, {"urgency", nullptr}, {"topic", nullptr}};  // null = absent
  Result<http::Request> defaults = provider->BuildRequest(m, Token());
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(HeaderOf(*defaults, "TTL"), "2419200");
  int count = 0;
  HeaderOf(*defaults, "Urgency", &count);
  EXPECT_EQ(count, 0);
}

TEST(WebPushProviderTest, BadHeaderOverridesAreRefused) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  PushMessage m = Message();
  for (Json overrides :
       {Json{{"ttl", -1}}, Json{{"ttl", 2592001}}, Json{{"ttl", "60"}}, Json{{"ttl", 1.5}},
        Json{{"urgency", "urgent"}}, Json{{"urgency", "HIGH"}}, Json{{"urgency", 5}},
        Json{{"urgency", "high, low"}}, Json{{"topic", ""}}, Json{{"topic", std::string(33, 'a')}},
        Json{{"topic", "has space"}}, Json{{"topic", "a+b/c="}}, Json{{"topic", 12}}}) {
    m.overrides = overrides;
    EXPECT_EQ(test::RefusalReason(*provider, m, Token()), "INVALID_OVERRIDES") << overrides.dump();
  }
}

TEST(WebPushProviderTest, BodyDecryptsToTheNotification) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  PushMessage m = Message();
  Json shown = Decrypted(*provider, m);
  EXPECT_EQ(shown["title"], "Hello Ann");
  EXPECT_EQ(shown["body"], "Your order shipped \xc3\xbc");
  // The trigger payload without `subscriber` and `step`, plus the message id.
  EXPECT_EQ(shown["data"], (Json{{"orderId", 7},
                                 {"nested", {{"a", {1, 2}}}},
                                 {"messageId", "65f0c0ffee0123456789abcd"}}));
  for (const char* absent :
       {"icon", "badge", "image", "tag", "url", "actions", "requireInteraction", "silent"}) {
    EXPECT_FALSE(shown.contains(absent)) << absent;
  }

  // The same text WebPushPlaintext gives.
  Result<http::Request> request = provider->BuildRequest(m, Token());
  ASSERT_TRUE(request.ok());
  Result<std::string> plaintext = TheBrowser().Decrypt(request->body);
  ASSERT_TRUE(plaintext.ok());
  Result<std::string> expected = WebPushPlaintext(m);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(*plaintext, *expected);
  // One record, no padding: 86 + plaintext + delimiter + tag.
  EXPECT_EQ(request->body.size(), 86 + plaintext->size() + 1 + 16);
}

TEST(WebPushProviderTest, NotificationOptionsFromOverrides) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  PushMessage m = Message();
  Json actions = Json::array({{{"action", "open"}, {"title", "Open"}}});
  m.overrides = {{"icon", "https://example.com/i.png"},
                 {"badge", "https://example.com/b.png"},
                 {"image", "https://example.com/big.png"},
                 {"tag", "order-7"},
                 {"url", "https://example.com/orders/7"},
                 {"actions", actions},
                 {"requireInteraction", true},
                 {"silent", false},
                 {"data", {{"extra", "x"}}},
                 {"ttl", 30}};
  Json shown = Decrypted(*provider, m);
  EXPECT_EQ(shown["icon"], "https://example.com/i.png");
  EXPECT_EQ(shown["badge"], "https://example.com/b.png");
  EXPECT_EQ(shown["image"], "https://example.com/big.png");
  EXPECT_EQ(shown["tag"], "order-7");
  EXPECT_EQ(shown["url"], "https://example.com/orders/7");
  EXPECT_EQ(shown["actions"], actions);
  EXPECT_EQ(shown["requireInteraction"], true);
  EXPECT_EQ(shown["silent"], false);
  EXPECT_EQ(shown["data"]["extra"], "x");
  EXPECT_EQ(shown["data"]["orderId"], 7);
  EXPECT_EQ(shown["data"]["messageId"], m.message_id);
  EXPECT_FALSE(shown.contains("ttl"));  // header options are not part of the notification
}

TEST(WebPushProviderTest, NotificationOptionsOfTheWrongTypeAreRefused) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  PushMessage m = Message();
  for (Json overrides :
       {Json{{"icon", 1}}, Json{{"badge", true}}, Json{{"image", Json::array()}}, Json{{"tag", 7}},
        Json{{"url", Json::object()}}, Json{{"actions", "x"}}, Json{{"requireInteraction", "yes"}},
        Json{{"silent", 1}}, Json{{"data", "x"}}, Json{{"data", Json::array()}}}) {
    m.overrides = overrides;
    EXPECT_EQ(test::RefusalReason(*provider, m, Token()), "INVALID_OVERRIDES") << overrides.dump();
  }
}

TEST(WebPushProviderTest, PlaintextOverTheLimitIsRefused) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  PushMessage m = Message();
  m.payload_json = "{}";
  m.content.clear();
  Result<std::string> base = WebPushPlaintext(m);
  ASSERT_TRUE(base.ok());
  // Grow the body until the plaintext is exactly 3993 bytes (accepted), then one more.
  m.content = std::string(crypto::kWebPushMaxPlaintext - base->size(), 'x');
  ASSERT_EQ(WebPushPlaintext(m)->size(), crypto::kWebPushMaxPlaintext);
  Result<http::Request> fits = provider->BuildRequest(m, Token());
  ASSERT_TRUE(fits.ok()) << fits.status().message();
  EXPECT_EQ(fits->body.size(), 4096u);
  EXPECT_EQ(TheBrowser().Decrypt(fits->body).value(), WebPushPlaintext(m).value());
  m.content += "x";
  EXPECT_EQ(test::RefusalReason(*provider, m, Token()), "PAYLOAD_TOO_LARGE");
}

TEST(WebPushProviderTest, DeviceTokenMustBeASubscription) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  for (std::string token :
       {std::string("not json"), std::string(R"({"endpoint":"https://a.example/p"})"),
        std::string(R"({"keys":{}})"),
        std::string(R"({"endpoint":"https://a.example/p","keys":{"p256dh":"!!","auth":"AAAA"}})"),
        TheBrowser().Token("ftp://a.example/p")}) {
    Result<http::Request> request = provider->BuildRequest(Message(token), Token());
    ASSERT_FALSE(request.ok()) << token;
    EXPECT_EQ(ReasonOf(request.status(), ""), "INVALID_SUBSCRIPTION") << token;
  }
  // keys.p256dh not on the curve: encryption refuses it.
  std::string off_curve = R"({"endpoint":"https://a.example/p","keys":{"p256dh":")" +
                          Base64UrlEncode(std::string(65, '\x04')) + R"(","auth":")" +
                          Base64UrlEncode(std::string(16, 'a')) + R"("}})";
  Result<http::Request> request = provider->BuildRequest(Message(off_curve), Token());
  ASSERT_FALSE(request.ok());
  EXPECT_EQ(ReasonOf(request.status(), ""), "INVALID_SUBSCRIPTION");
}

// ---- VAPID ------------------------------------------------------------------------------------

TEST(WebPushProviderTest, AuthenticatorMintsOneTokenPerOrigin) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  const Authenticator* auth = provider->auth();
  ASSERT_NE(auth, nullptr);
  EXPECT_EQ(auth->kind(), Authenticator::Kind::kMinted);
  EXPECT_FALSE(auth->CredentialKey().empty());
  EXPECT_EQ(auth->CredentialKey().find(Credentials()["secretKey"].get<std::string>()),
            std::string::npos);
  EXPECT_EQ(auth->Scope(Message()), "https://push.example.net");
  EXPECT_EQ(auth->Scope(Message(TheBrowser().Token("https://push.example.net:443/a"))),
            "https://push.example.net");
  EXPECT_EQ(auth->Scope(Message(TheBrowser().Token("https://push.example.net:8443/a/b?c"))),
            "https://push.example.net:8443");
  EXPECT_EQ(auth->Scope(Message(TheBrowser().Token("http://127.0.0.1:80/a"))), "http://127.0.0.1");
  EXPECT_EQ(auth->Scope(Message(TheBrowser().Token("http://127.0.0.1:8080/a"))),
            "http://127.0.0.1:8080");
  EXPECT_EQ(auth->Scope(Message(TheBrowser().Token("https://FCM.GoogleAPIs.com/fcm/send/x"))),
            "https://fcm.googleapis.com");
  EXPECT_EQ(auth->Scope(Message("garbage")), "");
  EXPECT_FALSE(auth->Mint("", NowMs()).ok());
}

TEST(WebPushProviderTest, MintedJwtIsAValidVapidToken) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  const EpochMs now = NowMs();
  Result<AuthToken> token = provider->auth()->Mint("https://push.example.net:8443", now);
  ASSERT_TRUE(token.ok()) << token.status().message();
  EXPECT_EQ(token->issued_at, now);
  Result<crypto::DecodedJwt> jwt = crypto::DecodeJwt(token->value);
  ASSERT_TRUE(jwt.ok());
  Json header = Json::parse(jwt->header_json);
  EXPECT_EQ(header["alg"], "ES256");
  EXPECT_EQ(header["typ"], "JWT");
  Json claims = Json::parse(jwt->claims_json);
  EXPECT_EQ(claims["aud"], "https://push.example.net:8443");
  EXPECT_EQ(claims["sub"], "mailto:ops@example.com");
  ASSERT_TRUE(claims["exp"].is_number_integer());
  const std::int64_t exp = claims["exp"].get<std::int64_t>();
  EXPECT_NEAR(static_cast<double>(exp), static_cast<double>(now / 1000 + 12 * 3600), 2.0);
  EXPECT_LE(exp, now / 1000 + 24 * 3600);  // RFC 8292: no more than 24 hours
  EXPECT_GT(token->refresh_at, now);
  EXPECT_LT(token->refresh_at, exp * 1000);
  // 64-byte raw R || S, verified with the VAPID public key (apiKey).
  std::string public_point = *Base64UrlDecode(Credentials()["apiKey"].get<std::string>());
  EXPECT_EQ(jwt->signature.size(), 64u);
  EXPECT_TRUE(crypto::VerifyEs256(public_point, jwt->signing_input, jwt->signature));
  EXPECT_FALSE(crypto::VerifyEs256(crypto::GenerateP256KeyPair().second, jwt->signing_input,
                                   jwt->signature));
}

TEST(WebPushProviderTest, BaseUrlRedirectsTheRequestAndTheAudience) {
  Json credentials = Credentials();
  credentials["baseUrl"] = "http://127.0.0.1:9000";
  auto provider = Make(credentials);
  ASSERT_NE(provider, nullptr);
  PushMessage m = Message();
  EXPECT_EQ(provider->auth()->Scope(m), "http://127.0.0.1:9000");
  Result<http::Request> request = provider->BuildRequest(m, Token());
  ASSERT_TRUE(request.ok()) << request.status().message();
  EXPECT_EQ(request->url, "http://127.0.0.1:9000/push/sub-123?x=1");
  EXPECT_TRUE(TheBrowser().Decrypt(request->body).ok());

  // A base with a path: the endpoint's path goes below it, as for the other providers.
  credentials["baseUrl"] = "https://mock.example.com:8443/webpush/";
  provider = Make(credentials);
  ASSERT_NE(provider, nullptr);
  EXPECT_EQ(provider->auth()->Scope(m), "https://mock.example.com:8443");
  request = provider->BuildRequest(m, Token());
  ASSERT_TRUE(request.ok()) << request.status().message();
  EXPECT_EQ(request->url, "https://mock.example.com:8443/webpush/push/sub-123?x=1");

  credentials["baseUrl"] = "https://mock.example.com";
  provider = Make(credentials);
  ASSERT_NE(provider, nullptr);
  EXPECT_EQ(provider->auth()->Scope(m), "https://mock.example.com");
  EXPECT_EQ(provider->BuildRequest(m, Token())->url, "https://mock.example.com/push/sub-123?x=1");
}

// ---- replies ----------------------------------------------------------------------------------

TEST(WebPushProviderTest, ClassifiesPushServiceReplies) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  const Provider& p = *provider;

  Outcome created = p.Classify(Reply(201, "", {{"location", "https://push.example.net/m/abc"}}));
  EXPECT_EQ(created.verdict, Verdict::kDelivered);
  EXPECT_EQ(created.provider_message_id, "https://push.example.net/m/abc");
  Outcome accepted = p.Classify(Reply(202, "", {{"location", "https://push.example.net/m/def"}}));
  EXPECT_EQ(accepted.verdict, Verdict::kDelivered);
  EXPECT_EQ(accepted.provider_message_id, "https://push.example.net/m/def");
  EXPECT_EQ(p.Classify(Reply(201)).verdict, Verdict::kDelivered);
  EXPECT_EQ(p.Classify(Reply(201)).provider_message_id, "");

  for (int gone : {404, 410}) {
    Outcome out = p.Classify(Reply(gone, "push subscription has unsubscribed or expired"));
    EXPECT_EQ(out.verdict, Verdict::kFailedRemoveToken) << gone;
    EXPECT_TRUE(out.unsubscribed) << gone;
    EXPECT_FALSE(out.reason.empty()) << gone;
  }
  Outcome too_large = p.Classify(Reply(413));
  EXPECT_EQ(too_large.verdict, Verdict::kFailed);
  EXPECT_FALSE(too_large.unsubscribed);

  Outcome busy = p.Classify(Reply(429, "", {{"retry-after", "7"}}));
  EXPECT_EQ(busy.verdict, Verdict::kRetry);
  ASSERT_TRUE(busy.retry_after.has_value());
  EXPECT_EQ(busy.retry_after->count(), 7000);
  EXPECT_EQ(p.Classify(Reply(429)).verdict, Verdict::kRetry);
  for (int status : {500, 502, 503, 504}) {
    EXPECT_EQ(p.Classify(Reply(status)).verdict, Verdict::kRetry) << status;
  }
  Outcome unavailable = p.Classify(Reply(503, "", {{"retry-after", "2"}}));
  ASSERT_TRUE(unavailable.retry_after.has_value());
  EXPECT_EQ(unavailable.retry_after->count(), 2000);

  for (int status : {400, 401, 403}) {
    Outcome out = p.Classify(Reply(
        status,
        R"({"code":401,"errno":109,"error":"Unauthorized","message":"bad","more_info":"x"})"));
    EXPECT_EQ(out.verdict, Verdict::kFailedConfig) << status;
    EXPECT_FALSE(out.reason.empty()) << status;
  }
  EXPECT_EQ(p.Classify(Reply(406)).verdict, Verdict::kRetry);  // WNS throttling
  EXPECT_EQ(p.Classify(Reply(405)).verdict, Verdict::kFailed);

  EXPECT_EQ(p.Classify(Failure(http::TransportError::kTimeout)).verdict, Verdict::kRetry);
  EXPECT_EQ(p.Classify(Failure(http::TransportError::kConnect)).verdict, Verdict::kRetry);
  EXPECT_EQ(p.Classify(Failure(http::TransportError::kForbiddenTarget)).verdict,
            Verdict::kFailedConfig);
}

TEST(WebPushProviderTest, ProbeIsALocalCheck) {
  auto provider = Make();
  ASSERT_NE(provider, nullptr);
  EXPECT_FALSE(provider->probe_uses_token());
  Result<std::optional<http::Request>> probe = provider->BuildProbe(AuthToken{});
  ASSERT_TRUE(probe.ok()) << probe.status().message();
  EXPECT_FALSE(probe->has_value());

  // A private key that does not belong to the public key (never passes the spec) is caught.
  Json mismatched = Credentials();
  mismatched["secretKey"] = Base64UrlEncode(crypto::GenerateP256KeyPair().first);
  Result<std::unique_ptr<Provider>> wrong = NewWebPushProvider(mismatched);
  ASSERT_TRUE(wrong.ok());
  Result<std::optional<http::Request>> refused = (*wrong)->BuildProbe(AuthToken{});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(ReasonOf(refused.status(), ""), "KEY_MISMATCH");
}

}  // namespace
}  // namespace herald::providers
