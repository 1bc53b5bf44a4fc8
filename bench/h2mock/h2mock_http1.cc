// herald_bench_h2mock: the HTTP/1.1 keep-alive front-end: a Worker's parser for the requests
// buffered on a connection (Content-Length or chunked bodies, Expect: 100-continue,
// Connection: close) and the response writer.

#include <charconv>
#include <cstdint>
#include <string>

#include "bench/h2mock/h2mock_routes.h"
#include "bench/h2mock/h2mock_worker.h"

namespace herald::bench {

// ------------------------------------------------------------------------------- HTTP/1.1
bool Worker::ParseHttp1(Conn* conn) {
  constexpr std::size_t kMaxHeader = 64 * 1024;
  constexpr std::size_t kMaxBody = 1 << 20;
  std::size_t consumed = 0;
  for (;;) {
    string_view in = string_view(conn->in).substr(consumed);
    if (in.empty()) break;
    std::size_t from = conn->scanned > 3 ? conn->scanned - 3 : 0;
    std::size_t end = in.find("\r\n\r\n", from);
    if (end == string_view::npos) {
      conn->scanned = in.size();
      if (in.size() > kMaxHeader) return ReplyH1Fatal(conn, 431);
      break;
    }
    const std::size_t header_len = end + 4;
    // Request line.
    Digest& d = conn->d;
    d.Reset();
    std::size_t line_end = in.find("\r\n");
    string_view line = in.substr(0, line_end);
    std::size_t sp1 = line.find(' ');
    std::size_t sp2 = line.rfind(' ');
    if (sp1 == string_view::npos || sp2 <= sp1) return ReplyH1Fatal(conn, 400);
    OnMethod(d, line.substr(0, sp1));
    OnPath(d, line.substr(sp1 + 1, sp2 - sp1 - 1));
    const bool http10 = line.substr(sp2 + 1) == "HTTP/1.0";
    // Headers.
    std::size_t content_length = 0;
    bool chunked = false, close_conn = http10, keep_alive = false, expect_continue = false;
    char lname[64];
    std::size_t pos = line_end + 2;
    while (pos < end) {
      std::size_t eol = in.find("\r\n", pos);
      string_view h = in.substr(pos, eol - pos);
      pos = eol + 2;
      std::size_t colon = h.find(':');
      if (colon == string_view::npos || colon == 0 || colon >= sizeof lname) continue;
      for (std::size_t i = 0; i < colon; ++i) lname[i] = Lower(h[i]);
      string_view name(lname, colon);
      string_view value = Trim(h.substr(colon + 1));
      if (name == "content-length") {
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), content_length);
        if (ec != std::errc() || p != value.data() + value.size()) return ReplyH1Fatal(conn, 400);
      } else if (name == "transfer-encoding") {
        chunked = IEquals(value, "chunked");
      } else if (name == "connection") {
        if (IEquals(value, "close")) close_conn = true;
        if (IEquals(value, "keep-alive")) keep_alive = true;
      } else if (name == "expect") {
        expect_continue = IEquals(value, "100-continue");
      } else {
        OnHeader(d, name, value);
      }
    }
    if (http10 && keep_alive) close_conn = false;
    // Body.
    string_view body;
    std::size_t total = header_len;
    if (chunked) {
      std::size_t at = header_len;
      conn->chunked.clear();
      bool complete = false;
      for (;;) {
        std::size_t eol = in.find("\r\n", at);
        if (eol == string_view::npos) break;
        std::size_t size = 0;
        string_view hex = in.substr(at, eol - at);
        if (std::size_t semi = hex.find(';'); semi != string_view::npos) hex = hex.substr(0, semi);
        auto [p, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), size, 16);
        if (ec != std::errc() || size > kMaxBody) return ReplyH1Fatal(conn, 400);
        at = eol + 2;
        if (size == 0) {
          // Trailers, then an empty line.
          std::size_t trailer_end = in.find("\r\n", at);
          while (trailer_end != string_view::npos && trailer_end != at) {
            at = trailer_end + 2;
            trailer_end = in.find("\r\n", at);
          }
          if (trailer_end == string_view::npos) break;
          at = trailer_end + 2;
          complete = true;
          break;
        }
        if (in.size() < at + size + 2) break;
        conn->chunked.append(in.substr(at, size));
        if (conn->chunked.size() > kMaxBody) return ReplyH1Fatal(conn, 413);
        at += size + 2;
      }
      if (!complete) {
        if (in.size() - header_len > kMaxBody + 4096) return ReplyH1Fatal(conn, 413);
        MaybeContinue(conn, expect_continue);
        conn->scanned = end;  // the headers are complete; wait for the body
        break;
      }
      body = conn->chunked;
      total = at;
    } else {
      if (content_length > kMaxBody) return ReplyH1Fatal(conn, 413);
      if (in.size() < header_len + content_length) {
        MaybeContinue(conn, expect_continue);
        conn->scanned = end;
        break;
      }
      body = in.substr(header_len, content_length);
      total = header_len + content_length;
    }
    Response r;
    mock_->Handle(index_, conn, d, body, body.size(), &r, conn->scratch, &conn->big);
    AppendH1(conn, r, close_conn);
    consumed += total;
    conn->scanned = 0;
    conn->sent_continue = false;
    if (close_conn) {
      conn->close_after = true;
      break;
    }
  }
  if (consumed > 0) conn->in.erase(0, consumed);
  return true;
}

void Worker::MaybeContinue(Conn* conn, bool expect_continue) {
  if (expect_continue && !conn->sent_continue) {
    conn->out.append("HTTP/1.1 100 Continue\r\n\r\n");
    conn->sent_continue = true;
  }
}

bool Worker::ReplyH1Fatal(Conn* conn, int status) {
  Response r;
  r.status = status;
  r.body = R"({"error":"bad request"})";
  AppendH1(conn, r, true);
  conn->close_after = true;
  conn->in.clear();
  Counters::Add(mock_->counters(index_).protocol_errors);
  return true;
}

void Worker::AppendH1(Conn* conn, const Response& r, bool close_conn) {
  std::string& out = conn->out;
  char num[24];
  auto append_num = [&](std::uint64_t v) {
    auto [p, ec] = std::to_chars(num, num + sizeof num, v);
    out.append(num, static_cast<std::size_t>(p - num));
  };
  out.append("HTTP/1.1 ");
  append_num(static_cast<std::uint64_t>(r.status));
  out.append(" ").append(ReasonPhrase(r.status)).append("\r\n");
  if (!r.body.empty()) out.append("content-type: application/json\r\n");
  if (!r.apns_id.empty()) out.append("apns-id: ").append(r.apns_id).append("\r\n");
  if (!r.location.empty()) out.append("location: ").append(r.location).append("\r\n");
  if (!r.ttl.empty()) out.append("ttl: ").append(r.ttl).append("\r\n");
  if (close_conn) out.append("connection: close\r\n");
  out.append("content-length: ");
  append_num(r.body.size());
  out.append("\r\n\r\n").append(r.body);
}

}  // namespace herald::bench
