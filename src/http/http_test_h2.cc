// The HTTP/2 side of TestServer (http_test_util.h): one nghttp2 server session per connection,
// on that connection's thread. A request goes to the handler when its stream ends; the reply
// (HTTP/1.1 bytes in Reply::raw) goes out as HEADERS and DATA frames once its delay is over.
// Test code only.
#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/http_test_util.h"

namespace herald::http::test {
namespace {

struct ParsedResponse {
  int status = 0;
  Headers headers;  // lowercase names, without connection-specific ones
  std::string body;
};

std::string_view TrimLeft(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  return text;
}

// Takes the body of a chunked message off the front of `raw`.
std::string Unchunk(std::string_view* raw) {
  std::string body;
  for (;;) {
    std::size_t line_end = raw->find("\r\n");
    if (line_end == std::string_view::npos) return body;
    std::size_t size = std::stoul(std::string(raw->substr(0, line_end)), nullptr, 16);
    raw->remove_prefix(line_end + 2);
    if (size == 0) {
      raw->remove_prefix(std::min<std::size_t>(2, raw->size()));
      return body;
    }
    body.append(raw->substr(0, size));
    raw->remove_prefix(std::min(raw->size(), size + 2));
  }
}

// The responses in `raw`: any 1xx ones, then the final one.
std::vector<ParsedResponse> ParseResponses(std::string_view raw) {
  std::vector<ParsedResponse> responses;
  while (!raw.empty()) {
    std::size_t end = raw.find("\r\n\r\n");
    if (end == std::string_view::npos) break;
    std::string_view head = raw.substr(0, end);
    raw.remove_prefix(end + 4);
    ParsedResponse response;
    std::size_t line_end = head.find("\r\n");
    std::string_view status_line = head.substr(0, line_end);
    response.status = std::stoi(std::string(status_line.substr(status_line.find(' ') + 1, 3)));
    bool chunked = false;
    std::optional<std::size_t> length;
    while (line_end != std::string_view::npos) {
      std::size_t start = line_end + 2;
      line_end = head.find("\r\n", start);
      std::string_view line = head.substr(
          start, line_end == std::string_view::npos ? std::string_view::npos : line_end - start);
      std::size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string name(line.substr(0, colon));
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value(TrimLeft(line.substr(colon + 1)));
      if (name == "transfer-encoding") {
        chunked = true;
        continue;
      }
      if (name == "connection" || name == "keep-alive") continue;
      if (name == "content-length") length = std::stoul(value);
      response.headers.emplace_back(std::move(name), std::move(value));
    }
    const bool final = response.status >= 200;
    if (final) {
      if (chunked) {
        response.body = Unchunk(&raw);
      } else {
        std::size_t size = length.value_or(raw.size());
        response.body = std::string(raw.substr(0, size));
        raw.remove_prefix(std::min(size, raw.size()));
      }
    }
    responses.push_back(std::move(response));
    if (final) break;
  }
  return responses;
}

}  // namespace

class TestServer::Http2Session {
 public:
  Http2Session(TestServer& server, ServerTransport& transport, int connection, std::string peer,
               bool resumed)
      : server_(server),
        transport_(transport),
        connection_(connection),
        peer_(std::move(peer)),
        resumed_(resumed) {}
  ~Http2Session() {
    if (session_ != nullptr) nghttp2_session_del(session_);
  }

  void Run();

 private:
  struct Due {
    Clock::time_point at;
    std::int32_t stream_id;
    Reply reply;
  };
  struct Body {
    std::string data;
    std::size_t offset = 0;
  };

  static Http2Session& Of(void* user) { return *static_cast<Http2Session*>(user); }
  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t name_length, const uint8_t* value, size_t value_length, uint8_t,
                      void* user);
  static int OnData(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                    size_t length, void* user);
  static int OnFrameReceived(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int OnFrameSent(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int OnStreamClosed(nghttp2_session*, int32_t stream_id, uint32_t, void* user);
  static ssize_t ReadBody(nghttp2_session*, int32_t stream_id, uint8_t* buffer, size_t length,
                          uint32_t* flags, nghttp2_data_source*, void* user);

  void RequestEnded(std::int32_t stream_id);
  void Respond(std::int32_t stream_id, const Reply& reply);
  bool Flush();

  TestServer& server_;
  ServerTransport& transport_;
  const int connection_;
  const std::string peer_;
  const bool resumed_;
  nghttp2_session* session_ = nullptr;
  std::map<std::int32_t, SeenRequest> requests_;  // being received
  std::map<std::int32_t, Body> bodies_;           // being sent
  std::vector<Due> due_;                          // replies waiting for their delay
  std::set<std::int32_t> open_;
  int opened_ = 0;
  std::int32_t goaway_last_ = 0;  // 0: no GOAWAY
  bool goaway_sent_ = false;
  bool close_ = false;
  int unanswered_ = 0;  // handled, reply not run yet
};

void TestServer::ServeHttp2(ServerTransport& transport, int connection, const std::string& peer,
                            bool resumed) {
  Http2Session(*this, transport, connection, peer, resumed).Run();
}

void TestServer::Http2Session::Run() {
  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, OnHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, OnData);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, OnFrameReceived);
  nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, OnFrameSent);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, OnStreamClosed);
  int rc = nghttp2_session_server_new(&session_, callbacks, this);
  nghttp2_session_callbacks_del(callbacks);
  if (rc != 0) {
    ADD_FAILURE() << "cannot create an HTTP/2 server session";
    return;
  }
  std::vector<nghttp2_settings_entry> settings;
  if (server_.options_.max_concurrent_streams > 0) {
    settings.push_back(
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, server_.options_.max_concurrent_streams});
  }
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());

  std::string input;
  for (;;) {
    if (!Flush() || close_) break;
    if (goaway_sent_ && open_.empty()) {  // everything below the GOAWAY is answered
      transport_.Linger();
      break;
    }
    if (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0) {
      break;
    }
    Clock::time_point now = Clock::now();
    auto ready =
        std::partition(due_.begin(), due_.end(), [now](const Due& due) { return due.at > now; });
    if (ready != due_.end()) {
      std::vector<Due> run(std::make_move_iterator(ready), std::make_move_iterator(due_.end()));
      due_.erase(ready, due_.end());
      for (const Due& due : run) Respond(due.stream_id, due.reply);
      continue;
    }
    milliseconds wait(20);
    for (const Due& due : due_) {
      wait = std::min(wait, std::chrono::ceil<milliseconds>(due.at - now));
    }
    input.clear();
    int got = transport_.ReadFor(&input, std::max(wait, milliseconds(0)));
    if (got < 0) break;
    if (got > 0 &&
        nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(input.data()),
                                 input.size()) < 0) {
      break;
    }
  }
  for (; unanswered_ > 0; --unanswered_) server_.Answered();
}

bool TestServer::Http2Session::Flush() {
  std::string output;
  const uint8_t* data = nullptr;
  ssize_t n = 0;
  while ((n = nghttp2_session_mem_send(session_, &data)) > 0) {
    output.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
  }
  return n == 0 && (output.empty() || transport_.Write(output));
}

void TestServer::Http2Session::RequestEnded(std::int32_t stream_id) {
  auto it = requests_.find(stream_id);
  if (it == requests_.end()) return;
  SeenRequest request = std::move(it->second);
  requests_.erase(it);
  if (goaway_last_ != 0 && stream_id > goaway_last_) return;  // never processed
  Reply reply = server_.Handle(request);
  ++unanswered_;
  if (reply.kind == Reply::kHang) return;  // stays unanswered
  due_.push_back(Due{Clock::now() + reply.delay, stream_id, std::move(reply)});
}

void TestServer::Http2Session::Respond(std::int32_t stream_id, const Reply& reply) {
  --unanswered_;
  server_.Answered();
  switch (reply.kind) {
    case Reply::kClose:
      close_ = true;
      return;
    case Reply::kRefuse:
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_REFUSED_STREAM);
      return;
    case Reply::kHang:
      return;
    case Reply::kRespond:
    case Reply::kRespondThenClose:
      break;
  }
  for (const ParsedResponse& response : ParseResponses(reply.raw)) {
    std::string status = std::to_string(response.status);
    std::vector<nghttp2_nv> headers;
    auto add = [&headers](const std::string& name, const std::string& value) {
      headers.push_back(
          nghttp2_nv{const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(name.data())),
                     const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(value.data())),
                     name.size(), value.size(), NGHTTP2_NV_FLAG_NONE});
    };
    const std::string status_name = ":status";
    add(status_name, status);
    for (const auto& [name, value] : response.headers) add(name, value);
    if (response.status < 200) {
      nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, stream_id, nullptr, headers.data(),
                             headers.size(), nullptr);
      continue;
    }
    nghttp2_data_provider body{};
    body.read_callback = ReadBody;
    if (!response.body.empty()) bodies_[stream_id] = Body{response.body, 0};
    nghttp2_submit_response(session_, stream_id, headers.data(), headers.size(),
                            response.body.empty() ? nullptr : &body);
  }
  if (reply.kind == Reply::kRespondThenClose) {  // as HTTP/2 servers close: GOAWAY first
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_NO_ERROR, nullptr, 0);
    Flush();
    transport_.Linger();
    close_ = true;
  }
}

int TestServer::Http2Session::OnBeginHeaders(nghttp2_session* session, const nghttp2_frame* frame,
                                             void* user) {
  Http2Session& self = Of(user);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  const std::int32_t id = frame->hd.stream_id;
  ++self.server_.streams_;
  self.open_.insert(id);
  SeenRequest& request = self.requests_[id];
  request.connection = self.connection_;
  request.peer = self.peer_;
  request.resumed = self.resumed_;
  const int goaway_after = self.server_.options_.goaway_after_streams;
  if (++self.opened_ == goaway_after && self.goaway_last_ == 0) {
    self.goaway_last_ = id;
    nghttp2_submit_goaway(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR, nullptr, 0);
  }
  return 0;
}

int TestServer::Http2Session::OnHeader(nghttp2_session*, const nghttp2_frame* frame,
                                       const uint8_t* name, size_t name_length,
                                       const uint8_t* value, size_t value_length, uint8_t,
                                       void* user) {
  auto it = Of(user).requests_.find(frame->hd.stream_id);
  if (it == Of(user).requests_.end()) return 0;
  SeenRequest& request = it->second;
  std::string key(reinterpret_cast<const char*>(name), name_length);
  std::string text(reinterpret_cast<const char*>(value), value_length);
  if (key == ":method") {
    request.method = std::move(text);
  } else if (key == ":path") {
    request.target = std::move(text);
  } else if (key == ":authority" || key.front() != ':') {
    request.headers.emplace_back(std::move(key), std::move(text));
  }
  return 0;
}

int TestServer::Http2Session::OnData(nghttp2_session*, uint8_t, int32_t stream_id,
                                     const uint8_t* data, size_t length, void* user) {
  auto it = Of(user).requests_.find(stream_id);
  if (it != Of(user).requests_.end()) {
    it->second.body.append(reinterpret_cast<const char*>(data), length);
  }
  return 0;
}

int TestServer::Http2Session::OnFrameReceived(nghttp2_session*, const nghttp2_frame* frame,
                                              void* user) {
  Http2Session& self = Of(user);
  if (frame->hd.type == NGHTTP2_RST_STREAM) ++self.server_.resets_;
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
    self.RequestEnded(frame->hd.stream_id);
  }
  return 0;
}

int TestServer::Http2Session::OnFrameSent(nghttp2_session*, const nghttp2_frame* frame,
                                          void* user) {
  if (frame->hd.type == NGHTTP2_GOAWAY) Of(user).goaway_sent_ = true;
  return 0;
}

int TestServer::Http2Session::OnStreamClosed(nghttp2_session*, int32_t stream_id, uint32_t,
                                             void* user) {
  Http2Session& self = Of(user);
  self.open_.erase(stream_id);
  self.requests_.erase(stream_id);
  self.bodies_.erase(stream_id);
  return 0;
}

ssize_t TestServer::Http2Session::ReadBody(nghttp2_session*, int32_t stream_id, uint8_t* buffer,
                                           size_t length, uint32_t* flags, nghttp2_data_source*,
                                           void* user) {
  auto it = Of(user).bodies_.find(stream_id);
  if (it == Of(user).bodies_.end()) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return 0;
  }
  Body& body = it->second;
  std::size_t n = std::min(length, body.data.size() - body.offset);
  std::copy_n(body.data.data() + body.offset, n, buffer);
  body.offset += n;
  if (body.offset == body.data.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

}  // namespace herald::http::test
