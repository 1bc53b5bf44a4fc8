// herald_bench_h2mock: the route checks and canned responses: the request digest (method, path,
// credentials and headers, read as they arrive), the status lines, and Mock::Handle, which
// answers APNs, the OAuth token endpoint, FCM and Web Push (and hands /stats and /reset to
// h2mock_stats.cc).

#include "bench/h2mock/h2mock_routes.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "bench/h2mock/h2mock_worker.h"

namespace herald::bench {

std::atomic<std::uint64_t> g_token_seq{0};

// ------------------------------------------------------------------------- request digest
void OnMethod(Digest& d, string_view method) {
  d.post = method == "POST";
  d.get = method == "GET";
}

void OnPath(Digest& d, string_view path) {
  if (std::size_t q = path.find('?'); q != string_view::npos) path = path.substr(0, q);
  constexpr string_view kDevice = "/3/device/", kProjects = "/v1/projects/",
                        kSend = "/messages:send", kWp = "/wp/";
  if (path.starts_with(kDevice)) {
    d.route = kApns;
    string_view token = path.substr(kDevice.size());
    d.apns_token_ok = token.size() >= 64 && std::all_of(token.begin(), token.end(), IsHex);
  } else if (path == "/token") {
    d.route = kToken;
  } else if (path.starts_with(kProjects) && path.ends_with(kSend) &&
             path.size() > kProjects.size() + kSend.size()) {
    string_view project =
        path.substr(kProjects.size(), path.size() - kProjects.size() - kSend.size());
    if (project.size() < sizeof(d.project) && project.find('/') == string_view::npos) {
      d.route = kFcm;
      std::memcpy(d.project, project.data(), project.size());
      d.project_len = project.size();
    } else {
      d.route = kUnknown;
    }
  } else if (path.starts_with(kWp) && path.size() > kWp.size()) {
    d.route = kWebPush;
  } else if (path == "/stats") {
    d.route = kStats;
  } else if (path == "/reset") {
    d.route = kReset;
  } else {
    d.route = kUnknown;
  }
}

void OnAuthorization(Digest& d, string_view value) {
  d.has_auth = true;
  d.auth_hash = Hash(value, 0xa17);
  value = Trim(value);
  if (IStartsWith(value, "bearer ")) {
    string_view rest = Trim(value.substr(7));
    d.bearer_jwt = LooksLikeJwt(rest);
    constexpr string_view kIssued = "mock-token-";
    if (rest.starts_with(kIssued)) {
      std::uint64_t n = 0;
      const char* first = rest.data() + kIssued.size();
      const char* last = rest.data() + rest.size();
      auto [end, ec] = std::from_chars(first, last, n);
      d.bearer_issued = ec == std::errc() && end == last && n >= 1 &&
                        n <= g_token_seq.load(std::memory_order_relaxed);
    }
  } else if (IStartsWith(value, "vapid ")) {
    // vapid t=<jwt>, k=<key>: parameters separated by commas, in any order.
    bool t_ok = false, k_ok = false;
    string_view params = value.substr(6);
    while (!params.empty()) {
      std::size_t comma = params.find(',');
      string_view param = Trim(params.substr(0, comma));
      params = comma == string_view::npos ? string_view() : params.substr(comma + 1);
      if (param.starts_with("t=")) t_ok = LooksLikeJwt(param.substr(2));
      if (param.starts_with("k=")) k_ok = param.size() > 2;
    }
    d.vapid_ok = t_ok && k_ok;
  } else if (IStartsWith(value, "webpush ")) {
    d.webpush_jwt = LooksLikeJwt(Trim(value.substr(8)));
  }
}

// One header (lower-case name) of the request.
void OnHeader(Digest& d, string_view name, string_view value) {
  switch (name.size()) {
    case 3:
      if (name == "ttl") {
        d.has_ttl = true;
        value = Trim(value);
        d.ttl_ok =
            !value.empty() && value.size() < sizeof(d.ttl) &&
            std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (d.ttl_ok) {
          std::memcpy(d.ttl, value.data(), value.size());
          d.ttl_len = value.size();
        }
      }
      break;
    case 5:
      if (name == "topic") {
        d.has_wp_topic = true;
        d.wp_topic_hash = Hash(Trim(value), 0x7091c);
      } else if (name == ":path") {
        OnPath(d, value);
      }
      break;
    case 7:
      if (name == "apns-id") {
        value = Trim(value);
        if (value.size() <= 36) {
          std::memcpy(d.apns_id, value.data(), value.size());
          d.apns_id_len = value.size();
        } else {
          d.apns_id_bad = true;
        }
      } else if (name == ":method") {
        OnMethod(d, value);
      }
      break;
    case 10:
      if (name == "apns-topic") d.has_apns_topic = !Trim(value).empty();
      if (name == "crypto-key") d.has_crypto_key = value.find("p256ecdsa=") != string_view::npos;
      break;
    case 13:
      if (name == "authorization") OnAuthorization(d, value);
      break;
    case 16:
      if (name == "content-encoding") d.ce_aes128gcm = IEquals(Trim(value), "aes128gcm");
      break;
    default:
      break;
  }
}

// --------------------------------------------------------------------------------- responses
string_view StatusText(int status) {
  switch (status) {
    case 200:
      return "200";
    case 201:
      return "201";
    case 400:
      return "400";
    case 401:
      return "401";
    case 403:
      return "403";
    case 404:
      return "404";
    case 405:
      return "405";
    case 413:
      return "413";
    default:
      return "500";
  }
}

string_view ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 431:
      return "Request Header Fields Too Large";
    default:
      return "Internal Server Error";
  }
}

namespace {

constexpr string_view kFcmUnauthenticated =
    R"({"error":{"code":401,"message":"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.","status":"UNAUTHENTICATED"}})";
constexpr string_view kFcmInvalidArgument =
    R"({"error":{"code":400,"message":"Request contains an invalid argument.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"},{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message","description":"a message with a token is required"}]}]}})";

}  // namespace

// -------------------------------------------------------------------------------------- mock
void Mock::Handle(int thread, Conn* conn, const Digest& d, string_view body, std::size_t body_len,
                  Response* r, char* scratch, std::string* big) {
  Counters& c = counters(thread);
  if (d.route == kStats || d.route == kReset) {
    if (d.route == kStats && d.get) {
      Stats(big);
      r->status = 200;
      r->body = *big;
    } else if (d.route == kReset && d.post) {
      Reset();
      r->status = 200;
      r->body = R"({"ok":true})";
    } else {
      r->status = 405;
      r->body = R"({"reason":"MethodNotAllowed"})";
    }
    return;
  }
  Counters::Add(c.requests);
  if (d.route < kPushRoutes && !conn->pushed) {
    conn->pushed = true;
    Counters::Add(c.push_connections);
  }
  if (d.route < kPushRoutes && d.route != kToken && d.has_auth) {
    distinct_auth_.Insert(d.auth_hash);
  }
  std::uint64_t key = 0;  // the push's identity, for duplicates
  switch (d.route) {
    case kApns:
      if (!d.post) {
        Reject(r, 405, R"({"reason":"MethodNotAllowed"})");
      } else if (!d.bearer_jwt) {
        Reject(r, 403, R"({"reason":"MissingProviderToken"})");
      } else if (!d.apns_token_ok) {
        Reject(r, 400, R"({"reason":"BadDeviceToken"})");
      } else if (!d.has_apns_topic) {
        Reject(r, 400, R"({"reason":"MissingTopic"})");
      } else if (d.apns_id_bad) {
        Reject(r, 400, R"({"reason":"BadMessageId"})");
      } else if (body_len == 0) {
        Reject(r, 400, R"({"reason":"PayloadEmpty"})");
      } else if (body_len > 4096 || !LooksLikeJsonObject(body)) {
        Reject(r, 413, R"({"reason":"PayloadTooLarge"})");
      } else {
        r->status = 200;
        r->body = {};
        if (d.apns_id_len > 0) {
          r->apns_id = string_view(d.apns_id, d.apns_id_len);
        } else {
          const std::uint64_t n = NextSeq(thread);
          int len = std::snprintf(scratch, kScratch, "00000000-0000-4000-8000-%012llx",
                                  static_cast<unsigned long long>(n & 0xffffffffffffULL));
          r->apns_id = string_view(scratch, static_cast<std::size_t>(len));
        }
        key = Hash(body, 0xa9);
      }
      break;
    case kToken: {
      if (!d.post) {
        Reject(r, 405, R"({"error":"invalid_request","error_description":"POST only"})");
        break;
      }
      bool grant_ok = false;
      bool assertion_ok = false;
      string_view form = body;
      while (!form.empty()) {
        std::size_t amp = form.find('&');
        string_view pair = form.substr(0, amp);
        form = amp == string_view::npos ? string_view() : form.substr(amp + 1);
        if (pair.starts_with("grant_type=")) {
          string_view v = pair.substr(11);
          grant_ok = v == "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" ||
                     v == "urn:ietf:params:oauth:grant-type:jwt-bearer";
        } else if (pair.starts_with("assertion=")) {
          assertion_ok = pair.size() > 10;
        }
      }
      if (!assertion_ok) {
        Reject(r, 400, R"({"error":"invalid_grant","error_description":"missing assertion"})");
      } else if (!grant_ok) {
        Reject(r, 400,
               R"({"error":"unsupported_grant_type","error_description":"jwt-bearer only"})");
      } else {
        const std::uint64_t n = g_token_seq.fetch_add(1, std::memory_order_relaxed) + 1;
        int len = std::snprintf(
            scratch, kScratch,
            R"({"access_token":"mock-token-%llu","expires_in":3599,"token_type":"Bearer"})",
            static_cast<unsigned long long>(n));
        r->status = 200;
        r->body = string_view(scratch, static_cast<std::size_t>(len));
      }
      break;
    }
    case kFcm:
      if (!d.post) {
        Reject(r, 405,
               R"({"error":{"code":405,"message":"POST only","status":"INVALID_ARGUMENT"}})");
      } else if (!d.bearer_issued) {
        Reject(r, 401, kFcmUnauthenticated);
      } else if (!LooksLikeJsonObject(body) || body_len > 65536 ||
                 !HasJsonKey(body, R"("message")") || !HasJsonKey(body, R"("token")")) {
        Reject(r, 400, kFcmInvalidArgument);
      } else {
        const std::uint64_t n = NextSeq(thread);
        int len = std::snprintf(scratch, kScratch, R"({"name":"projects/%.*s/messages/%llu"})",
                                static_cast<int>(d.project_len), d.project,
                                static_cast<unsigned long long>(n));
        r->status = 200;
        r->body = string_view(scratch, static_cast<std::size_t>(len));
        key = Hash(body, 0xfc);
      }
      break;
    case kWebPush:
      if (!d.post) {
        Reject(r, 405,
               R"({"code":405,"errno":999,"error":"Method Not Allowed","message":"POST only"})");
      } else if (!d.ce_aes128gcm) {
        Reject(
            r, 400,
            R"({"code":400,"errno":110,"error":"Bad Request","message":"Content-Encoding must be aes128gcm"})");
      } else if (!d.has_ttl || !d.ttl_ok) {
        Reject(
            r, 400,
            R"({"code":400,"errno":111,"error":"Bad Request","message":"Missing or invalid TTL header"})");
      } else if (!d.vapid_ok && !(d.webpush_jwt && d.has_crypto_key)) {
        Reject(
            r, 401,
            R"({"code":401,"errno":109,"error":"Unauthorized","message":"Missing or malformed VAPID authorization"})");
      } else if (body_len < 103) {
        Reject(
            r, 400,
            R"({"code":400,"errno":110,"error":"Bad Request","message":"body shorter than one aes128gcm record"})");
      } else if (body_len > 4096) {
        Reject(
            r, 413,
            R"({"code":413,"errno":104,"error":"Payload Too Large","message":"body over 4096 bytes"})");
      } else {
        const std::uint64_t n = NextSeq(thread);
        int len = std::snprintf(scratch, kScratch, "/m/%llu", static_cast<unsigned long long>(n));
        r->status = 201;
        r->body = {};
        r->location = string_view(scratch, static_cast<std::size_t>(len));
        r->ttl = string_view(d.ttl, d.ttl_len);
        if (d.has_wp_topic) key = d.wp_topic_hash;
      }
      break;
    default:
      Reject(r, 404, R"({"reason":"BadPath"})");
      break;
  }
  CountStatus(c, r->status);
  const int route = d.route < kPushRoutes ? d.route : -1;
  if (r->status >= 200 && r->status < 300 && route >= 0) {
    const std::int64_t now = NowUs();
    Counters::Add(c.accepted);
    Counters::Add(c.by_route[static_cast<std::size_t>(route)]);
    Counters::Add(c.body_bytes[static_cast<std::size_t>(route)], body_len);
    if (c.first_at_us.load(std::memory_order_relaxed) == 0)
      c.first_at_us.store(now, std::memory_order_relaxed);
    c.last_at_us.store(now, std::memory_order_relaxed);
    if (key != 0) {
      Counters::Add(c.keyed_accepted);
      if (messages_.Insert(key)) c.distinct_last_at_us.store(now, std::memory_order_relaxed);
    }
  } else {
    Counters::Add(c.rejected);
    if (route >= 0) Counters::Add(c.rejected_by_route[static_cast<std::size_t>(route)]);
  }
}

}  // namespace herald::bench
