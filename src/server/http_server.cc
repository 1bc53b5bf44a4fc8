// HttpServer on Boost.Beast. By default N threads run one io_context and each connection has a
// strand, so a handler that blocks holds one thread while the others serve everyone. With
// `pin_connections` each thread runs its own io_context and a connection lives on one of them
// (round robin): no strand, shared run queue or lock between threads, for handlers that never
// block.
//
// Ownership: a Core (io_context, acceptor, handler, registry of open sessions) is shared by the
// server object, every Session and, through its Session, every outstanding Done callback, so a
// handler that answers late can never touch a destroyed io_context. Pending Asio handlers hold
// Sessions but never the Core, so a stopped io_context leaves no reference cycle behind.
#include "server/http_server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/ids.h"
#include "core/log.h"
#include "server/error_reply.h"

namespace herald::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

// After an error reply or Connection: close, unread input is discarded for this long so the
// client sees the reply instead of a reset.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);
// How long Stop() waits for the I/O threads to run out of work before forcing them.
constexpr auto kDrainWait = std::chrono::seconds(1);
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
// A reply buffer larger than this is not kept for the connection's next reply.
constexpr std::size_t kKeptReplyBuffer = 64 * 1024;

std::string_view Sv(beast::string_view s) { return {s.data(), s.size()}; }

char LowerAscii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string LowerCopy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = LowerAscii(c);
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return LowerAscii(x) == LowerAscii(y);
         });
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded decoding: '+' is a space, malformed escapes stay literal.
std::string DecodeQueryComponent(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out.push_back(' ');
    } else if (in[i] == '%' && i + 2 < in.size() && HexValue(in[i + 1]) >= 0 &&
               HexValue(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2])));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    std::size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      out.emplace_back(DecodeQueryComponent(part), std::string());
    } else {
      out.emplace_back(DecodeQueryComponent(part.substr(0, eq)),
                       DecodeQueryComponent(part.substr(eq + 1)));
    }
  }
  return out;
}

bool IsSaneRequestId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

std::string RequestIdFrom(std::string_view header) {
  return IsSaneRequestId(header) ? std::string(header) : RandomAlnum(16);
}

// Extra reply headers must not break framing (which the server owns) or inject lines.
bool IsAllowedHeader(std::string_view name, std::string_view value) {
  if (name.empty() || EqualsIgnoreCase(name, "content-length") ||
      EqualsIgnoreCase(name, "transfer-encoding") || EqualsIgnoreCase(name, "connection")) {
    return false;
  }
  auto bad_value = [](char c) { return c == '\r' || c == '\n' || c == '\0'; };
  auto bad_name = [&](char c) { return bad_value(c) || c == ':' || c == ' ' || c == '\t'; };
  return std::none_of(name.begin(), name.end(), bad_name) &&
         std::none_of(value.begin(), value.end(), bad_value);
}

class Session;

struct Core : std::enable_shared_from_this<Core> {
  Core(const ServerOptions& opts, Handler h)
      : options(opts),
        handler(std::move(h)),
        iocs(MakeContexts(std::max(1, opts.threads), opts.pin_connections)),
        acceptor(opts.pin_connections ? net::any_io_executor(iocs.front()->get_executor())
                                      : net::any_io_executor(net::make_strand(*iocs.front()))),
        accept_retry(acceptor.get_executor()) {}

  static std::vector<std::unique_ptr<net::io_context>> MakeContexts(int threads, bool pinned) {
    std::vector<std::unique_ptr<net::io_context>> out;
    if (!pinned) {
      out.push_back(std::make_unique<net::io_context>(threads));
      return out;
    }
    for (int i = 0; i < threads; ++i) out.push_back(std::make_unique<net::io_context>(1));
    return out;
  }

  // Where the next connection lives: its own strand, or the next pinned context.
  net::any_io_executor NextExecutor() {
    if (!options.pin_connections) return net::make_strand(*iocs.front());
    return iocs[next_context++ % iocs.size()]->get_executor();
  }

  void DoAccept();
  void OnAccept(beast::error_code ec, tcp::socket socket);

  // False once stopping: the caller must then drop the connection.
  bool Register(const std::shared_ptr<Session>& session);
  void Deregister(Session* session);
  std::vector<std::shared_ptr<Session>> Snapshot();

  const ServerOptions options;
  const Handler handler;
  std::vector<std::unique_ptr<net::io_context>> iocs;  // one, or one per thread (pinned)
  std::size_t next_context = 0;                        // used by the acceptor's handler only
  tcp::acceptor acceptor;                              // on the first context (own strand)
  net::steady_timer accept_retry;
  std::atomic<bool> stopping{false};

  std::mutex mu;
  std::condition_variable cv;
  bool replies_open = true;  // Done callbacks may still post writes (guarded by mu)
  int threads_running = 0;   // guarded by mu
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;  // open ones; guarded by mu
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<Core> core, tcp::socket socket)
      : core_(std::move(core)), stream_(std::move(socket)), executor_(stream_.get_executor()) {
    beast::error_code ec;
    auto endpoint = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = endpoint.address().to_string();
    stream_.socket().set_option(tcp::no_delay(true), ec);
  }
  ~Session() { core_->Deregister(this); }

  const net::any_io_executor& executor() const { return executor_; }

  void Start() {
    if (!core_->Register(shared_from_this())) return;
    net::dispatch(executor_, [self = shared_from_this()] { self->DoRead(); });
  }

  // Both run on the connection's strand or thread. Idle = between requests or lingering; requests
  // already under way are left to finish.
  void CloseIfIdle() {
    bool between_requests =
        state_ == State::kReading && buffer_.size() == 0 && (!parser_ || !parser_->got_some());
    if (between_requests || state_ == State::kLingering) Close();
  }

  void Close() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
    core_->Deregister(this);
  }

 private:
  enum class State { kReading, kHandling, kWriting, kLingering, kClosed };

  // One request/reply; shared with the Done callback, which keeps the Request alive.
  struct Exchange {
    Request request;
    Clock::time_point start = Clock::now();
    bool keep_alive = false;
    unsigned version = 11;
    std::atomic<bool> answered{false};
  };

  void DoRead() {
    if (state_ == State::kClosed) return;
    if (core_->stopping) return Close();
    state_ = State::kReading;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(
        core_->options.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    // The body limit depends on the route, known once the header is in (ApplyBodyLimit): until
    // then the parser must not refuse a Content-Length itself.
    body_limit_ = core_->options.max_body_bytes;
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    stream_.expires_after(core_->options.idle_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, std::size_t) {
    if (ec) return OnReadError(ec);
    if (!ApplyBodyLimit()) return OnReadError(http::error::body_limit);
    if (parser_->is_done()) return Dispatch();
    // A small body usually arrives with its header: parse what is already buffered here, rather
    // than through an asynchronous read that would complete via the scheduler with nothing to
    // read.
    if (buffer_.size() > 0) {
      parser_->eager(true);
      while (buffer_.size() > 0 && !parser_->is_done()) {
        beast::error_code put_ec;
        std::size_t used = parser_->put(buffer_.data(), put_ec);
        buffer_.consume(used);
        if (put_ec == http::error::need_more) break;
        if (put_ec) return OnReadError(put_ec);
        if (used == 0) break;
      }
      if (parser_->is_done()) return Dispatch();
    }
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                       [self = shared_from_this()](beast::error_code ec, std::size_t) {
                         if (ec) return self->Close();
                         self->ReadBody();
                       });
      return;
    }
    ReadBody();
  }

  // Sets the request's body limit before any of the body is parsed: max_body_bytes, unless the
  // body may be larger (a larger Content-Length, or chunked) and its route takes more
  // (body_limit_for); false if its Content-Length is already over the limit. A chunked body is
  // counted against the limit as it arrives.
  bool ApplyBodyLimit() {
    const auto& msg = parser_->get();
    std::optional<std::uint64_t> length;
    if (auto declared = parser_->content_length()) length = *declared;
    body_limit_ = core_->options.max_body_bytes;
    bool may_be_larger = length ? *length > body_limit_ : parser_->chunked();
    if (may_be_larger && core_->options.body_limit_for) {
      Request head;
      FillHead(msg, head);
      body_limit_ = std::max(body_limit_, core_->options.body_limit_for(head));
    }
    if (length && *length > body_limit_) return false;
    parser_->body_limit(static_cast<std::uint64_t>(body_limit_));
    return true;
  }

  void ReadBody() {
    if (state_ != State::kReading) return;
    stream_.expires_after(core_->options.idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnBody, shared_from_this()));
  }

  void OnBody(beast::error_code ec, std::size_t) {
    if (ec) return OnReadError(ec);
    Dispatch();
  }

  void OnReadError(beast::error_code ec) {
    if (state_ != State::kReading) return;  // closed by Stop()
    if (ec == http::error::body_limit) {
      return Reject(413, Code::kTooLarge,
                    "Request body exceeds the " + std::to_string(body_limit_) + "-byte limit");
    }
    if (ec == http::error::header_limit) {
      return Reject(431, Code::kInvalidArgument,
                    "Request headers exceed the " +
                        std::to_string(core_->options.max_header_bytes) + "-byte limit");
    }
    // Any other parse error is malformed input; end_of_stream / partial_message mean the peer
    // went away, and socket errors and timeouts leave nobody to answer.
    bool parse_error = ec.category() == http::make_error_code(http::error::bad_method).category();
    if (parse_error && ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return Reject(400, Code::kInvalidArgument, "Malformed HTTP request: " + ec.message());
    }
    Close();
  }

  // The request line and headers of `msg` into `request` (method, target, path, query, headers).
  static void FillHead(const http::request<http::string_body>& msg, Request& request) {
    request.method = std::string(Sv(msg.method_string()));
    request.target = std::string(Sv(msg.target()));
    std::size_t question = request.target.find('?');
    request.path = request.target.substr(0, question);
    if (question != std::string::npos) {
      request.query = ParseQuery(std::string_view(request.target).substr(question + 1));
    }
    request.headers.reserve(std::distance(msg.begin(), msg.end()));
    for (const auto& field : msg) {
      request.headers.emplace_back(LowerCopy(Sv(field.name_string())),
                                   std::string(Sv(field.value())));
    }
  }

  // Answers a framing error ourselves; the connection is closed after the reply.
  void Reject(int status, Code code, std::string message) {
    auto exchange = std::make_shared<Exchange>();
    const auto& msg = parser_->get();
    Request& request = exchange->request;
    request.method = std::string(Sv(msg.method_string()));
    request.target = std::string(Sv(msg.target()));
    request.path = request.target.substr(0, request.target.find('?'));
    request.request_id = RequestIdFrom(Sv(msg["x-request-id"]));
    spdlog::debug("http_reject status={} reason=\"{}\" remote={} request_id={}", status, message,
                  remote_, request.request_id);
    state_ = State::kHandling;
    exchange_ = exchange;
    Write(exchange, ErrorReply(Status(code, std::move(message)), request.path, status));
  }

  void Dispatch() {
    state_ = State::kHandling;
    stream_.expires_never();
    auto exchange = std::make_shared<Exchange>();
    auto& msg = parser_->get();
    Request& request = exchange->request;
    FillHead(msg, request);
    request.body = std::move(msg.body());
    request.remote = remote_;
    request.request_id = RequestIdFrom(request.Header("x-request-id"));
    exchange->keep_alive = msg.keep_alive();
    exchange->version = msg.version();
    exchange_ = exchange;
    parser_.reset();

    Done done = [self = shared_from_this(), exchange](Reply reply) {
      if (exchange->answered.exchange(true)) return;  // exactly once
      std::lock_guard<std::mutex> lock(self->core_->mu);
      if (!self->core_->replies_open) return;  // server stopped; connection already gone
      net::post(self->executor_, [self, exchange, reply = std::move(reply)]() mutable {
        self->Write(exchange, std::move(reply));
      });
    };
    try {
      core_->handler(request, done);
    } catch (const std::exception& e) {
      spdlog::error("http_handler_exception request_id={} what=\"{}\"", request.request_id,
                    e.what());
      done(ErrorReply(500, request.path, "Internal server error"));
    } catch (...) {
      spdlog::error("http_handler_exception request_id={}", request.request_id);
      done(ErrorReply(500, request.path, "Internal server error"));
    }
  }

  // Frames the reply into out_ (and body_) as Beast's serializer did (same fields, order and
  // Connection semantics; only a 1xx, 204 or 304 now goes without Content-Length, which RFC 9110
  // forbids there), for one gathered write: the serializer walks a sequence of buffers per field,
  // which cost more than the rest of a small reply's handling.
  void BuildResponse(const Exchange& exchange, Reply& reply, bool keep_alive) {
    const int status = reply.status;
    const bool bodyless = status / 100 == 1 || status == 204 || status == 304;
    std::string& out = out_;
    out.clear();
    out.reserve(192 + reply.content_type.size());
    out += exchange.version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    out += std::to_string(status);
    out += ' ';
    beast::string_view reason = http::obsolete_reason(static_cast<http::status>(status));
    out.append(reason.data(), reason.size());
    out += "\r\nServer: herald\r\n";
    auto field = [&out](std::string_view name, std::string_view value) {
      out += name;
      out += ": ";
      out += value;
      out += "\r\n";
    };
    if (!reply.content_type.empty() && IsAllowedHeader("content-type", reply.content_type)) {
      field("Content-Type", reply.content_type);
    }
    for (const auto& [name, value] : reply.headers) {
      // The request id below replaces any the handler set, as before.
      if (IsAllowedHeader(name, value) && !EqualsIgnoreCase(name, "x-request-id")) {
        field(name, value);
      }
    }
    field("X-Request-Id", exchange.request.request_id);
    if (exchange.version == 10 && keep_alive) field("Connection", "keep-alive");
    if (exchange.version != 10 && !keep_alive) field("Connection", "close");
    if (!bodyless) field("Content-Length", std::to_string(reply.body.size()));
    out += "\r\n";
    body_ = bodyless ? std::string() : std::move(reply.body);
  }

  void Write(const std::shared_ptr<Exchange>& exchange, Reply reply) {
    if (state_ != State::kHandling || exchange != exchange_) return;
    state_ = State::kWriting;
    const Request& request = exchange->request;
    if (reply.status < 200 || reply.status > 599) {
      spdlog::error("http_bad_status status={} request_id={}", reply.status, request.request_id);
      reply = ErrorReply(500, request.path, "Internal server error");
    }
    bool keep_alive = exchange->keep_alive && !core_->stopping;
    try {
      BuildResponse(*exchange, reply, keep_alive);
    } catch (const std::exception& e) {
      spdlog::error("http_bad_reply request_id={} what=\"{}\"", request.request_id, e.what());
      reply = ErrorReply(500, request.path, "Internal server error");
      BuildResponse(*exchange, reply, keep_alive);
    }
    spdlog::debug("http_request method={} path={} status={} duration_ms={:.2f} request_id={}",
                  request.method, request.path, reply.status,
                  std::chrono::duration<double, std::milli>(Clock::now() - exchange->start).count(),
                  request.request_id);
    stream_.expires_after(core_->options.idle_timeout);
    std::array<net::const_buffer, 2> bytes{net::buffer(out_), net::buffer(body_)};
    net::async_write(stream_, bytes,
                     [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
                       self->OnWrite(keep_alive, ec);
                     });
  }

  void OnWrite(bool keep_alive, beast::error_code ec) {
    if (out_.capacity() > kKeptReplyBuffer) std::string().swap(out_);
    std::string().swap(body_);
    exchange_.reset();
    if (ec) return Close();
    if (!keep_alive) return Linger();
    DoRead();
  }

  // Half-closes and discards input until the peer closes or kLingerTime passes.
  void Linger() {
    if (state_ == State::kClosed) return;
    state_ = State::kLingering;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec || core_->stopping) return Close();
    stream_.expires_after(kLingerTime);
    buffer_.clear();
    DrainSome();
  }

  void DrainSome() {
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec || self->state_ != State::kLingering) return self->Close();
                              self->DrainSome();
                            });
  }

  std::shared_ptr<Core> core_;
  beast::tcp_stream stream_;
  net::any_io_executor executor_;  // the connection's strand, or its pinned io_context
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  // The body limit of the request being read (ApplyBodyLimit).
  std::size_t body_limit_ = 0;
  std::string out_;   // the reply being written: status line and fields
  std::string body_;  // ... and its body
  std::shared_ptr<Exchange> exchange_;
  State state_ = State::kReading;
};

void Core::DoAccept() {
  acceptor.async_accept(NextExecutor(), [this](beast::error_code ec, tcp::socket socket) {
    OnAccept(ec, std::move(socket));
  });
}

void Core::OnAccept(beast::error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
  if (ec) {  // e.g. out of file descriptors: back off instead of spinning
    spdlog::warn("http_accept_failed error=\"{}\"", ec.message());
    accept_retry.expires_after(kAcceptRetryDelay);
    accept_retry.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec && acceptor.is_open()) DoAccept();
    });
    return;
  }
  std::make_shared<Session>(shared_from_this(), std::move(socket))->Start();
  DoAccept();
}

bool Core::Register(const std::shared_ptr<Session>& session) {
  std::lock_guard<std::mutex> lock(mu);
  if (stopping) return false;
  sessions.emplace(session.get(), session);
  return true;
}

void Core::Deregister(Session* session) {
  std::lock_guard<std::mutex> lock(mu);
  if (sessions.erase(session) > 0) cv.notify_all();
}

std::vector<std::shared_ptr<Session>> Core::Snapshot() {
  std::vector<std::shared_ptr<Session>> out;
  std::lock_guard<std::mutex> lock(mu);
  for (auto& [ptr, weak] : sessions) {
    if (auto session = weak.lock()) out.push_back(std::move(session));
  }
  return out;
}

class BeastHttpServer : public HttpServer {
 public:
  BeastHttpServer(std::shared_ptr<Core> core, std::uint16_t port)
      : core_(std::move(core)), port_(port) {
    for (auto& ioc : core_->iocs) work_.push_back(net::make_work_guard(*ioc));
    core_->DoAccept();
    int threads = std::max(1, core_->options.threads);
    core_->threads_running = threads;
    for (int i = 0; i < threads; ++i) {
      net::io_context* ioc = core_->iocs[static_cast<std::size_t>(i) % core_->iocs.size()].get();
      threads_.emplace_back([core = core_.get(), ioc] {
        SetThreadName("herald-http");
        for (;;) {
          try {
            ioc->run();
            break;
          } catch (const std::exception& e) {
            spdlog::error("http_io_exception what=\"{}\"", e.what());
          }
        }
        std::lock_guard<std::mutex> lock(core->mu);
        --core->threads_running;
        core->cv.notify_all();
      });
    }
  }
  ~BeastHttpServer() override { Stop(std::chrono::milliseconds(5000)); }

  std::uint16_t port() const override { return port_; }

  void Stop(std::chrono::milliseconds grace) override {
    std::lock_guard<std::mutex> stop_lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    Core& core = *core_;
    auto deadline = Clock::now() + grace;
    {
      std::lock_guard<std::mutex> lock(core.mu);
      core.stopping = true;
    }
    net::post(core.acceptor.get_executor(), [&core] {
      beast::error_code ec;
      core.acceptor.close(ec);
      core.accept_retry.cancel();
    });
    for (auto& session : core.Snapshot()) {
      net::post(session->executor(), [session] { session->CloseIfIdle(); });
    }
    // In-flight requests get until the deadline to be answered and written.
    {
      std::unique_lock<std::mutex> lock(core.mu);
      core.cv.wait_until(lock, deadline, [&] { return core.sessions.empty(); });
      core.replies_open = false;
    }
    for (auto& session : core.Snapshot()) {
      net::post(session->executor(), [session] { session->Close(); });
    }
    // With every socket closed the threads run out of work and return by themselves.
    work_.clear();
    {
      std::unique_lock<std::mutex> lock(core.mu);
      if (!core.cv.wait_for(lock, kDrainWait, [&] { return core.threads_running == 0; })) {
        for (auto& ioc : core.iocs) ioc->stop();
      }
    }
    for (auto& thread : threads_) thread.join();
    threads_.clear();
    spdlog::debug("http_stopped port={}", port_);
  }

 private:
  std::shared_ptr<Core> core_;
  std::uint16_t port_;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  std::mutex stop_mu_;
  bool stopped_ = false;
};

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const ServerOptions& options,
                                                      Handler handler) {
  auto core = std::make_shared<Core>(options, std::move(handler));
  std::string where = options.host + ":" + std::to_string(options.port);
  auto fail = [&](const beast::error_code& ec) {
    return Status::Unavailable("cannot listen on " + where + ": " + ec.message());
  };

  beast::error_code ec;
  tcp::resolver resolver(*core->iocs.front());
  auto endpoints = resolver.resolve(options.host, std::to_string(options.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec) return fail(ec);
  if (endpoints.empty()) return fail(net::error::host_not_found);
  tcp::endpoint endpoint = endpoints.begin()->endpoint();

  tcp::acceptor& acceptor = core->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail(ec);
  std::uint16_t port = acceptor.local_endpoint(ec).port();
  if (ec) return fail(ec);

  spdlog::info("http_listening host={} port={} threads={}", options.host, port,
               std::max(1, options.threads));
  return std::unique_ptr<HttpServer>(std::make_unique<BeastHttpServer>(std::move(core), port));
}

}  // namespace herald::server
