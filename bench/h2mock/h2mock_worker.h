// herald_bench_h2mock: connections and the Worker, one epoll thread. The Worker's loop (accept,
// read, write) is in h2mock_main.cc, its HTTP/2 front-end (nghttp2 callbacks) in h2mock_h2.cc and
// its HTTP/1.1 front-end (a request parser) in h2mock_http1.cc.

#pragma once

#include <nghttp2/nghttp2.h>
#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/h2mock/h2mock_routes.h"
#include "bench/h2mock/h2mock_util.h"

namespace herald::bench {

// ------------------------------------------------------------------------------- connections
struct Pollable {
  enum Kind { kListen, kWake, kConn } kind;
  explicit Pollable(Kind k) : kind(k) {}
};

class Worker;

// One request stream of an HTTP/2 connection (pooled per connection).
struct Stream {
  Digest d;
  std::size_t body_len = 0;  // all the bytes received
  std::size_t body_kept = 0;
  std::array<char, 4097> body;  // the first 4097 bytes: enough to tell "over 4096"
  Response r;
  std::size_t resp_off = 0;
  char scratch[kScratch];
  std::string big;  // /stats
  bool answered = false;

  void Reset() {
    d.Reset();
    body_len = body_kept = resp_off = 0;
    r = Response();
    answered = false;
  }
};

struct Conn : Pollable {
  Conn() : Pollable(kConn) {}
  Worker* worker = nullptr;
  int fd = -1;
  enum Proto { kDetect, kH2, kH1 } proto = kDetect;
  bool pushed = false;       // carried a push route request (counted once)
  bool close_after = false;  // HTTP/1.1 Connection: close, or a fatal parse error
  bool polling_out = false;
  std::string in;           // HTTP/1.1 bytes not yet parsed (and the first bytes while detecting)
  std::size_t scanned = 0;  // how far `in` was searched for the end of the headers
  bool sent_continue = false;
  std::string out;
  std::size_t out_off = 0;
  nghttp2_session* h2 = nullptr;
  std::vector<std::unique_ptr<Stream>> streams;  // owns every Stream
  std::vector<Stream*> free_streams;
  // HTTP/1.1 request scratch
  Digest d;
  std::string chunked;  // a chunked body, assembled
  char scratch[kScratch];
  std::string big;

  Stream* AcquireStream() {
    if (free_streams.empty()) {
      streams.push_back(std::make_unique<Stream>());
      return streams.back().get();
    }
    Stream* s = free_streams.back();
    free_streams.pop_back();
    return s;
  }
  void ReleaseStream(Stream* s) { free_streams.push_back(s); }
};

// ------------------------------------------------------------------------------------ worker
class Worker {
 public:
  Worker(Mock* mock, int index, int listen_fd, std::vector<std::unique_ptr<Worker>>* all)
      : mock_(mock), index_(index), listen_fd_(listen_fd), all_(all) {}
  ~Worker();

  bool Init();
  void Start();
  void Wake();
  void Join();
  // A connection accepted by another worker.
  void HandOver(int fd);

 private:
  void Run();
  void AcceptAll();
  void Adopt(int fd);
  void Close(Conn* conn);
  void Destroy(Conn* conn);

  enum class Read { kOk, kEof, kError };
  // Reads what the socket has (up to 16 buffers, then other connections get their turn).
  Read OnReadable(Conn* conn);
  bool Consume(Conn* conn, string_view data);
  // Writes what is pending (and what nghttp2 has to send); false to close.
  bool Flush(Conn* conn);

  // ------------------------------------------------------------------------------- HTTP/2
  bool StartH2(Conn* conn);
  bool FeedH2(Conn* conn, string_view data);
  static nghttp2_session_callbacks* MakeCallbacks();
  static int OnBeginHeaders(nghttp2_session* session, const nghttp2_frame* frame, void* user);
  static int OnH2Header(nghttp2_session* session, const nghttp2_frame* frame,
                        const std::uint8_t* name, std::size_t namelen, const std::uint8_t* value,
                        std::size_t valuelen, std::uint8_t, void*);
  static int OnDataChunk(nghttp2_session* session, std::uint8_t, std::int32_t stream_id,
                         const std::uint8_t* data, std::size_t len, void*);
  static int OnFrameRecv(nghttp2_session* session, const nghttp2_frame* frame, void* user);
  static ssize_t ReadBody(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                          std::uint32_t* flags, nghttp2_data_source* source, void*);
  static nghttp2_nv Nv(string_view name, string_view value);
  static int SubmitH2(nghttp2_session* session, std::int32_t stream_id, Stream* s);
  static int OnStreamClose(nghttp2_session* session, std::int32_t stream_id, std::uint32_t,
                           void* user);

  // ------------------------------------------------------------------------------- HTTP/1.1
  // Parses every complete request in conn->in; false to close at once.
  bool ParseHttp1(Conn* conn);
  void MaybeContinue(Conn* conn, bool expect_continue);
  bool ReplyH1Fatal(Conn* conn, int status);
  static void AppendH1(Conn* conn, const Response& r, bool close_conn);

  Mock* mock_;
  const int index_;
  const int listen_fd_;
  std::vector<std::unique_ptr<Worker>>* all_;
  int epfd_ = -1;
  int wake_fd_ = -1;
  Pollable listen_item_{Pollable::kListen};
  Pollable wake_item_{Pollable::kWake};
  std::thread thread_;
  std::mutex mu_;
  std::vector<int> incoming_;  // guarded by mu_
  std::vector<Conn*> conns_;
  std::vector<Conn*> closing_;
  std::size_t next_ = 0;
  std::array<char, 64 * 1024> rbuf_;
  nghttp2_session_callbacks* callbacks_ = nullptr;
  nghttp2_option* h2_option_ = nullptr;
};

}  // namespace herald::bench
