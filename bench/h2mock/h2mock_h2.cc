// herald_bench_h2mock: the HTTP/2 (h2c, prior knowledge) front-end: a Worker's nghttp2 server
// session per connection, its callbacks that fill a Stream's Digest and body, and the response
// (headers and body) submitted once a request stream ends.

#include <nghttp2/nghttp2.h>
#include <sys/types.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <iterator>

#include "bench/h2mock/h2mock_routes.h"
#include "bench/h2mock/h2mock_worker.h"

namespace herald::bench {

// ------------------------------------------------------------------------------- HTTP/2
bool Worker::StartH2(Conn* conn) {
  if (nghttp2_session_server_new2(&conn->h2, callbacks_, conn, h2_option_) != 0) return false;
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 24},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 1u << 16},
  };
  if (nghttp2_submit_settings(conn->h2, NGHTTP2_FLAG_NONE, settings, std::size(settings)) != 0) {
    return false;
  }
  return nghttp2_session_set_local_window_size(conn->h2, NGHTTP2_FLAG_NONE, 0, 1 << 30) == 0;
}

bool Worker::FeedH2(Conn* conn, string_view data) {
  ssize_t n = nghttp2_session_mem_recv(conn->h2, reinterpret_cast<const std::uint8_t*>(data.data()),
                                       data.size());
  if (n < 0) {
    Counters::Add(mock_->counters(index_).protocol_errors);
    return false;
  }
  return true;
}

nghttp2_session_callbacks* Worker::MakeCallbacks() {
  nghttp2_session_callbacks* cb = nullptr;
  if (nghttp2_session_callbacks_new(&cb) != 0) return nullptr;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &Worker::OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cb, &Worker::OnH2Header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &Worker::OnDataChunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &Worker::OnFrameRecv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &Worker::OnStreamClose);
  return cb;
}

int Worker::OnBeginHeaders(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto* conn = static_cast<Conn*>(user);
  Stream* s = conn->AcquireStream();
  s->Reset();
  nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, s);
  Counters::Add(conn->worker->mock_->counters(conn->worker->index_).h2_streams);
  return 0;
}

int Worker::OnH2Header(nghttp2_session* session, const nghttp2_frame* frame,
                       const std::uint8_t* name, std::size_t namelen, const std::uint8_t* value,
                       std::size_t valuelen, std::uint8_t, void*) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  auto* s =
      static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  if (!s) return 0;
  OnHeader(s->d, string_view(reinterpret_cast<const char*>(name), namelen),
           string_view(reinterpret_cast<const char*>(value), valuelen));
  return 0;
}

int Worker::OnDataChunk(nghttp2_session* session, std::uint8_t, std::int32_t stream_id,
                        const std::uint8_t* data, std::size_t len, void*) {
  auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, stream_id));
  if (!s) return 0;
  const std::size_t keep = std::min(len, s->body.size() - s->body_kept);
  std::memcpy(s->body.data() + s->body_kept, data, keep);
  s->body_kept += keep;
  s->body_len += len;
  return 0;
}

int Worker::OnFrameRecv(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
  auto* conn = static_cast<Conn*>(user);
  Worker* w = conn->worker;
  switch (frame->hd.type) {
    case NGHTTP2_RST_STREAM:
      Counters::Add(w->mock_->counters(w->index_).rst_stream_received);
      return 0;
    case NGHTTP2_GOAWAY:
      Counters::Add(w->mock_->counters(w->index_).goaway_received);
      return 0;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
      break;
    default:
      return 0;
  }
  if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
  auto* s =
      static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  if (!s || s->answered) return 0;
  s->answered = true;
  w->mock_->Handle(w->index_, conn, s->d, string_view(s->body.data(), s->body_kept), s->body_len,
                   &s->r, s->scratch, &s->big);
  return SubmitH2(session, frame->hd.stream_id, s);
}

ssize_t Worker::ReadBody(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                         std::uint32_t* flags, nghttp2_data_source* source, void*) {
  auto* s = static_cast<Stream*>(source->ptr);
  const std::size_t n = std::min(length, s->r.body.size() - s->resp_off);
  std::memcpy(buf, s->r.body.data() + s->resp_off, n);
  s->resp_off += n;
  if (s->resp_off == s->r.body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

nghttp2_nv Worker::Nv(string_view name, string_view value) {
  return nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
}

int Worker::SubmitH2(nghttp2_session* session, std::int32_t stream_id, Stream* s) {
  const Response& r = s->r;
  std::array<nghttp2_nv, 5> nv;
  std::size_t n = 0;
  nv[n++] = Nv(":status", StatusText(r.status));
  if (!r.body.empty()) nv[n++] = Nv("content-type", "application/json");
  if (!r.apns_id.empty()) nv[n++] = Nv("apns-id", r.apns_id);
  if (!r.location.empty()) nv[n++] = Nv("location", r.location);
  if (!r.ttl.empty()) nv[n++] = Nv("ttl", r.ttl);
  nghttp2_data_provider provider{};
  provider.source.ptr = s;
  provider.read_callback = &Worker::ReadBody;
  int rv = nghttp2_submit_response(session, stream_id, nv.data(), n,
                                   r.body.empty() ? nullptr : &provider);
  return rv == 0 ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

int Worker::OnStreamClose(nghttp2_session* session, std::int32_t stream_id, std::uint32_t,
                          void* user) {
  auto* conn = static_cast<Conn*>(user);
  auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, stream_id));
  if (s) {
    nghttp2_session_set_stream_user_data(session, stream_id, nullptr);
    conn->ReleaseStream(s);
  }
  return 0;
}

}  // namespace herald::bench
