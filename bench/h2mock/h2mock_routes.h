// herald_bench_h2mock: what both protocol front-ends hand over and get back: the request Digest
// (read header by header), the Response, and the Mock, whose Handle (h2mock_routes.cc) checks a
// request against its route (APNs, the OAuth token endpoint, FCM, Web Push) and picks the canned
// answer.

#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/h2mock/h2mock_stats.h"
#include "bench/h2mock/h2mock_util.h"

namespace herald::bench {

// ------------------------------------------------------------------------- request digest
// What a request's line and headers say, read as they arrive (HTTP/2 header callbacks or the
// HTTP/1.1 parser), so that no header is kept.
struct Digest {
  Route route = kNone;
  bool post = false, get = false;
  bool apns_token_ok = false;
  char project[64];
  std::size_t project_len = 0;
  bool has_auth = false, bearer_jwt = false, bearer_issued = false, vapid_ok = false,
       webpush_jwt = false, has_crypto_key = false;
  std::uint64_t auth_hash = 0;
  bool has_apns_topic = false, ce_aes128gcm = false, has_ttl = false, ttl_ok = false;
  char ttl[16];
  std::size_t ttl_len = 0;
  bool has_wp_topic = false;
  std::uint64_t wp_topic_hash = 0;
  char apns_id[40];
  std::size_t apns_id_len = 0;
  bool apns_id_bad = false;

  void Reset() {
    route = kNone;
    post = get = apns_token_ok = false;
    project_len = 0;
    has_auth = bearer_jwt = bearer_issued = vapid_ok = webpush_jwt = has_crypto_key = false;
    auth_hash = 0;
    has_apns_topic = ce_aes128gcm = has_ttl = ttl_ok = false;
    ttl_len = 0;
    has_wp_topic = false;
    wp_topic_hash = 0;
    apns_id_len = 0;
    apns_id_bad = false;
  }
};

// access tokens issued (never reset: tokens stay valid)
extern std::atomic<std::uint64_t> g_token_seq;

void OnMethod(Digest& d, string_view method);
void OnPath(Digest& d, string_view path);
void OnAuthorization(Digest& d, string_view value);
// One header (lower-case name) of the request.
void OnHeader(Digest& d, string_view name, string_view value);

// --------------------------------------------------------------------------------- responses
struct Response {
  int status = 200;
  string_view body;  // static, or in the caller's scratch / big buffer
  string_view apns_id, location, ttl;
};

constexpr std::size_t kScratch = 256;

string_view StatusText(int status);
string_view ReasonPhrase(int status);

struct Conn;

// -------------------------------------------------------------------------------------- mock
class Mock {
 public:
  explicit Mock(int threads) : threads_(threads), counters_(static_cast<std::size_t>(threads)) {}

  Counters& counters(int thread) { return counters_[static_cast<std::size_t>(thread)]; }
  int threads() const { return threads_; }

  // The answer to one complete request.
  void Handle(int thread, Conn* conn, const Digest& d, string_view body, std::size_t body_len,
              Response* r, char* scratch, std::string* big);

  // GET /stats and POST /reset (h2mock_stats.cc).
  void Stats(std::string* out) const;
  void Reset();

 private:
  static void Reject(Response* r, int status, string_view body) {
    r->status = status;
    r->body = body;
  }
  static void CountStatus(Counters& c, int status) {
    int i = StatusIndex(status);
    if (i >= 0) Counters::Add(c.by_status[static_cast<std::size_t>(i)]);
  }
  std::uint64_t NextSeq(int thread) {
    Counters& c = counters(thread);
    const std::uint64_t n = c.seq.load(std::memory_order_relaxed);
    c.seq.store(n + 1, std::memory_order_relaxed);
    return n * static_cast<std::uint64_t>(threads_) + static_cast<std::uint64_t>(thread) + 1;
  }

  const int threads_;
  std::vector<Counters> counters_;
  DistinctSet distinct_auth_;
  DistinctSet messages_;
};

}  // namespace herald::bench
