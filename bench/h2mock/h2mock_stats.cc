// herald_bench_h2mock: GET /stats (the counters of every thread summed into one JSON object) and
// POST /reset, i.e. Mock::Stats and Mock::Reset; the counters are declared in h2mock_stats.h.

#include "bench/h2mock/h2mock_stats.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>

#include "bench/h2mock/h2mock_routes.h"

namespace herald::bench {

void Mock::Stats(std::string* out) const {
  auto sum = [&](auto pick) {
    std::uint64_t total = 0;
    for (const Counters& c : counters_) total += pick(c).load(std::memory_order_relaxed);
    return total;
  };
  auto min_nonzero = [&](auto pick) {
    std::int64_t best = 0;
    for (const Counters& c : counters_) {
      std::int64_t v = pick(c).load(std::memory_order_relaxed);
      if (v != 0 && (best == 0 || v < best)) best = v;
    }
    return best;
  };
  auto max = [&](auto pick) {
    std::int64_t best = 0;
    for (const Counters& c : counters_)
      best = std::max(best, pick(c).load(std::memory_order_relaxed));
    return best;
  };
  out->clear();
  char buf[256];
  auto put = [&](const char* key, unsigned long long v, bool comma = true) {
    int n = std::snprintf(buf, sizeof buf, "%s\"%s\":%llu", comma ? "," : "", key, v);
    out->append(buf, static_cast<std::size_t>(n));
  };
  auto put_signed = [&](const char* key, long long v) {
    int n = std::snprintf(buf, sizeof buf, ",\"%s\":%lld", key, v);
    out->append(buf, static_cast<std::size_t>(n));
  };
  auto group = [&](const char* key, auto pick) {
    out->append(",\"").append(key).append("\":{");
    for (std::size_t r = 0; r < kPushRoutes; ++r) {
      put(kRouteNames[r], sum([&](const Counters& c) -> const Counters::C& { return pick(c)[r]; }),
          r > 0);
    }
    out->append("}");
  };
  out->append("{");
  put("requests", sum([](const Counters& c) -> const Counters::C& { return c.requests; }), false);
  put("accepted", sum([](const Counters& c) -> const Counters::C& { return c.accepted; }));
  put("rejected", sum([](const Counters& c) -> const Counters::C& { return c.rejected; }));
  group(
      "by_route", [](const Counters& c) -> const auto& { return c.by_route; });
  group(
      "rejected_by_route", [](const Counters& c) -> const auto& { return c.rejected_by_route; });
  group(
      "body_bytes", [](const Counters& c) -> const auto& { return c.body_bytes; });
  out->append(",\"by_status\":{");
  bool first = true;
  for (std::size_t i = 0; i < kStatuses.size(); ++i) {
    std::uint64_t v = sum([&](const Counters& c) -> const Counters::C& { return c.by_status[i]; });
    if (v == 0) continue;
    int n = std::snprintf(buf, sizeof buf, "%s\"%d\":%llu", first ? "" : ",", kStatuses[i],
                          static_cast<unsigned long long>(v));
    out->append(buf, static_cast<std::size_t>(n));
    first = false;
  }
  out->append("}");
  const std::uint64_t connections =
      sum([](const Counters& c) -> const Counters::C& { return c.connections; });
  const std::uint64_t closed =
      sum([](const Counters& c) -> const Counters::C& { return c.closed; });
  put("connections", connections);
  put("push_connections",
      sum([](const Counters& c) -> const Counters::C& { return c.push_connections; }));
  put("h2_connections",
      sum([](const Counters& c) -> const Counters::C& { return c.h2_connections; }));
  put("http1_connections",
      sum([](const Counters& c) -> const Counters::C& { return c.http1_connections; }));
  put("open_connections", connections >= closed ? connections - closed : 0);
  put("h2_streams", sum([](const Counters& c) -> const Counters::C& { return c.h2_streams; }));
  put("rst_stream_received",
      sum([](const Counters& c) -> const Counters::C& { return c.rst_stream_received; }));
  put("goaway_received",
      sum([](const Counters& c) -> const Counters::C& { return c.goaway_received; }));
  put("protocol_errors",
      sum([](const Counters& c) -> const Counters::C& { return c.protocol_errors; }));
  put("distinct_auth", distinct_auth_.count());
  const std::uint64_t keyed =
      sum([](const Counters& c) -> const Counters::C& { return c.keyed_accepted; });
  put("keyed_accepted", keyed);
  put("distinct_messages", messages_.count());
  put("duplicates", keyed >= messages_.count() ? keyed - messages_.count() : 0);
  put("tokens_issued", g_token_seq.load(std::memory_order_relaxed));
  put_signed("first_at_us",
             min_nonzero([](const Counters& c) -> const auto& { return c.first_at_us; }));
  put_signed("last_at_us", max([](const Counters& c) -> const auto& { return c.last_at_us; }));
  put_signed("distinct_last_at_us",
             max([](const Counters& c) -> const auto& { return c.distinct_last_at_us; }));
  put("threads", static_cast<unsigned long long>(threads_));
  out->append(",\"saturated\":")
      .append(distinct_auth_.saturated() || messages_.saturated() ? "true" : "false");
  out->append("}");
}

void Mock::Reset() {
  for (Counters& c : counters_) c.Zero();
  distinct_auth_.Clear();
  messages_.Clear();
}

}  // namespace herald::bench
