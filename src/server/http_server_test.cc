#include "server/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/json.h"

namespace herald::server {
namespace {

using std::chrono::milliseconds;

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;
};

// A tiny blocking HTTP/1.1 client over POSIX sockets; every read times out after 5 s.
class Client {
 public:
  explicit Client(std::uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    timeval timeout{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~Client() { close(fd_); }

  bool connected() const { return connected_; }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Reads one response framed by Content-Length.
  std::optional<Response> Read() {
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    Response response;
    std::string head = buf_.substr(0, end + 2);
    buf_.erase(0, end + 4);
    std::size_t line_end = head.find("\r\n");
    response.status = std::stoi(head.substr(9, 3));
    for (std::size_t pos = line_end + 2; pos < head.size();) {
      std::size_t next = head.find("\r\n", pos);
      std::string line = head.substr(pos, next - pos);
      std::size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      response.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
      pos = next + 2;
    }
    auto length_header = response.headers.find("content-length");
    std::size_t length =
        length_header == response.headers.end() ? 0 : std::stoul(length_header->second);
    while (buf_.size() < length) {
      if (!Fill()) return std::nullopt;
    }
    response.body = buf_.substr(0, length);
    buf_.erase(0, length);
    return response;
  }

  std::optional<Response> Roundtrip(std::string_view request) {
    if (!Send(request)) return std::nullopt;
    return Read();
  }

  // Every byte until the server closes the connection (or a read times out).
  std::string ReadAll() {
    while (Fill()) {
    }
    return std::exchange(buf_, std::string());
  }

  // True if the server closed the connection (EOF or reset) with nothing more to read.
  bool ServerClosed() { return buf_.empty() && !Fill() && !timed_out_; }

 private:
  bool Fill() {
    char chunk[4096];
    ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    timed_out_ = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    if (n <= 0) return false;
    buf_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  bool timed_out_ = false;
  std::string buf_;
};

std::string Get(std::string_view target, std::string_view extra_headers = "") {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n" + std::string(extra_headers) +
         "\r\n";
}

std::string Post(std::string_view target, std::string_view body) {
  return "POST " + std::string(target) +
         " HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

Json BodyJson(const Response& response) {
  std::string error;
  auto json = ParseJson(response.body, &error);
  return json ? *json : Json();
}

class HttpServerTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (server_) server_->Stop();
    for (auto& t : workers_) t.join();
  }

  void StartServer(ServerOptions options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    auto started = HttpServer::Start(
        options, [this](Request& request, Done done) { Handle(request, std::move(done)); });
    ASSERT_TRUE(started.ok()) << started.status().message();
    server_ = std::move(*started);
  }

  void Handle(Request& request, Done done) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_ = request;
      ++calls_;
    }
    if (request.path == "/hello") {
      done(Reply{200, "hello", "text/plain", {{"X-Extra", "1"}}});
    } else if (request.path == "/echo") {
      done(Reply{200, request.body});
    } else if (request.path == "/async" || request.path == "/slow") {
      int delay_ms = request.path == "/async" ? 5 : 200;
      std::lock_guard<std::mutex> lock(mu_);
      workers_.emplace_back([done = std::move(done), delay_ms] {
        std::this_thread::sleep_for(milliseconds(delay_ms));
        done(Reply{202, R"({"async":true})"});
      });
    } else if (request.path == "/nocontent") {
      done(Reply{204, "dropped: a 204 has no body"});
    } else if (request.path == "/headers") {
      done(Reply{201,
                 "{}",
                 "application/json",
                 {{"X-Request-Id", "from-handler"}, {"X-Bad", "a\r\nInjected: 1"}, {"X-Ok", "v"}}});
    } else if (request.path == "/throw") {
      throw std::runtime_error("boom");
    } else {
      done(Reply{404, "{}"});
    }
  }

  Request LastRequest() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_;
  }
  int Calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

  std::unique_ptr<HttpServer> server_;
  std::mutex mu_;
  Request last_;
  int calls_ = 0;
  std::vector<std::thread> workers_;
};

TEST(RequestTest, Accessors) {
  Request request;
  request.headers = {{"x-a", "1"}, {"x-a", "2"}};
  request.query = {{"a", "1"}, {"b", ""}, {"a", "2"}, {"a[]", "3"}, {"ab", "x"}, {"a[", "y"}};
  request.params = {{"id", "42"}};
  EXPECT_EQ(request.Header("x-a"), "1");
  EXPECT_EQ(request.Header("X-A"), "1");
  EXPECT_EQ(request.Header("x-b"), "");
  ASSERT_NE(request.Query("a"), nullptr);
  EXPECT_EQ(*request.Query("a"), "1");
  ASSERT_NE(request.Query("b"), nullptr);
  EXPECT_EQ(*request.Query("b"), "");
  EXPECT_EQ(request.Query("c"), nullptr);
  EXPECT_EQ(request.QueryAll("a"), (std::vector<std::string>{"1", "2", "3"}));  // a[]: axios
  EXPECT_TRUE(request.QueryAll("c").empty());
  EXPECT_EQ(request.Param("id"), "42");
  EXPECT_EQ(request.Param("missing"), "");
}

TEST_F(HttpServerTest, SimpleGet) {
  StartServer();
  Client client(server_->port());
  auto response = client.Roundtrip(Get("/hello"));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "hello");
  EXPECT_EQ(response->headers["content-type"], "text/plain");
  EXPECT_EQ(response->headers["server"], "herald");
  EXPECT_EQ(response->headers["x-extra"], "1");
  EXPECT_EQ(response->headers["x-request-id"].size(), 16u);
  EXPECT_EQ(response->headers["x-request-id"], LastRequest().request_id);

  Request request = LastRequest();
  EXPECT_EQ(request.method, "GET");
  EXPECT_EQ(request.path, "/hello");
  EXPECT_EQ(request.remote, "127.0.0.1");
  EXPECT_EQ(request.Header("host"), "test");
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  StartServer();
  Client client(server_->port());
  for (int i = 0; i < 3; ++i) {
    auto response = client.Roundtrip(Get("/hello"));
    ASSERT_TRUE(response) << i;
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->headers.count("connection"), 0u);
  }
  EXPECT_EQ(Calls(), 3);
}

TEST_F(HttpServerTest, PinnedConnectionsAreServedOnEveryThread) {
  ServerOptions options;
  options.threads = 2;
  options.pin_connections = true;
  StartServer(options);
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(std::make_unique<Client>(server_->port()));
  for (int round = 0; round < 3; ++round) {
    for (auto& client : clients) {
      auto hello = client->Roundtrip(Get("/hello"));
      ASSERT_TRUE(hello) << round;
      EXPECT_EQ(hello->status, 200);
      auto late = client->Roundtrip(Get("/async"));  // answered from another thread
      ASSERT_TRUE(late) << round;
      EXPECT_EQ(late->status, 202);
    }
  }
  EXPECT_EQ(Calls(), 24);
  server_->Stop();
  for (auto& client : clients) EXPECT_TRUE(client->ServerClosed());
}

TEST_F(HttpServerTest, ConnectionCloseIsHonoured) {
  StartServer();
  Client client(server_->port());
  auto response = client.Roundtrip(Get("/hello", "Connection: close\r\n"));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->headers["connection"], "close");
  EXPECT_TRUE(client.ServerClosed());
}

TEST_F(HttpServerTest, RepliesAreFramedByteForByte) {
  StartServer();
  auto exchange = [&](std::string_view request) {
    Client client(server_->port());
    EXPECT_TRUE(client.Send(request));
    return client.ReadAll();
  };
  // HTTP/1.1 asking to close: the status line, our fields in order, then Content-Length.
  EXPECT_EQ(
      exchange("GET /hello HTTP/1.1\r\nHost: t\r\nX-Request-Id: r1\r\nConnection: close\r\n\r\n"),
      "HTTP/1.1 200 OK\r\nServer: herald\r\nContent-Type: text/plain\r\nX-Extra: 1\r\n"
      "X-Request-Id: r1\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello");
  // HTTP/1.0 closes by default and says nothing about it.
  EXPECT_EQ(exchange("GET /hello HTTP/1.0\r\nX-Request-Id: r2\r\n\r\n"),
            "HTTP/1.0 200 OK\r\nServer: herald\r\nContent-Type: text/plain\r\nX-Extra: 1\r\n"
            "X-Request-Id: r2\r\nContent-Length: 5\r\n\r\nhello");
  // A 204 has neither a body nor a Content-Length; the handler's X-Request-Id gives way to the
  // request's, and a header value with a line break is dropped.
  EXPECT_EQ(exchange("GET /nocontent HTTP/1.1\r\nHost: t\r\nX-Request-Id: r3\r\nConnection: "
                     "close\r\n\r\n"),
            "HTTP/1.1 204 No Content\r\nServer: herald\r\nContent-Type: application/json; "
            "charset=utf-8\r\nX-Request-Id: r3\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(exchange("GET /headers HTTP/1.1\r\nHost: t\r\nX-Request-Id: r4\r\nConnection: "
                     "close\r\n\r\n"),
            "HTTP/1.1 201 Created\r\nServer: herald\r\nContent-Type: application/json\r\n"
            "X-Ok: v\r\nX-Request-Id: r4\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}");
}

TEST_F(HttpServerTest, RequestsSentTogetherAreAnsweredInOrder) {
  StartServer();
  Client client(server_->port());
  // Two bodies and the start of a third request in one write: each body ends where its
  // Content-Length says, and what follows is the next request.
  ASSERT_TRUE(client.Send(Post("/echo", R"({"n":1})") + Post("/echo", R"({"n":22})") + "GET /hel"));
  auto first = client.Read();
  auto second = client.Read();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->body, R"({"n":1})");
  EXPECT_EQ(second->body, R"({"n":22})");
  ASSERT_TRUE(client.Send("lo HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto third = client.Read();
  ASSERT_TRUE(third);
  EXPECT_EQ(third->body, "hello");
}

TEST_F(HttpServerTest, HttpOneZeroKeepAliveIsAnsweredAndKept) {
  StartServer();
  Client client(server_->port());
  for (int i = 0; i < 2; ++i) {
    auto response = client.Roundtrip("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    ASSERT_TRUE(response);
    EXPECT_EQ(response->headers["connection"], "keep-alive");
    EXPECT_EQ(response->body, "hello");
  }
}

TEST_F(HttpServerTest, QueryIsDecodedInOrderWithRepeats) {
  StartServer();
  Client client(server_->port());
  ASSERT_TRUE(client.Roundtrip(Get("/echo?a=1&a=2&b=x%20y+z&flag&&c=%zz")));
  Request request = LastRequest();
  EXPECT_EQ(request.path, "/echo");
  EXPECT_EQ(request.target, "/echo?a=1&a=2&b=x%20y+z&flag&&c=%zz");
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(request.query,
            (Pairs{{"a", "1"}, {"a", "2"}, {"b", "x y z"}, {"flag", ""}, {"c", "%zz"}}));
  EXPECT_EQ(request.QueryAll("a"), (std::vector<std::string>{"1", "2"}));
}

TEST_F(HttpServerTest, HeaderNamesAreLowercase) {
  StartServer();
  Client client(server_->port());
  ASSERT_TRUE(client.Roundtrip(Get("/hello", "X-Custom-Thing: Value\r\n")));
  Request request = LastRequest();
  EXPECT_EQ(request.Header("x-custom-thing"), "Value");
  for (const auto& [name, value] : request.headers) {
    for (char c : name) EXPECT_FALSE(c >= 'A' && c <= 'Z') << name;
  }
}

TEST_F(HttpServerTest, PostBodyIsDelivered) {
  StartServer();
  Client client(server_->port());
  auto response = client.Roundtrip(Post("/echo", R"({"name":"Ada"})"));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, R"({"name":"Ada"})");
  EXPECT_EQ(response->headers["content-type"], "application/json; charset=utf-8");
  EXPECT_EQ(LastRequest().method, "POST");
  EXPECT_EQ(LastRequest().body, R"({"name":"Ada"})");
}

TEST_F(HttpServerTest, ExpectContinueGetsInterimResponse) {
  StartServer();
  Client client(server_->port());
  ASSERT_TRUE(client.Send(
      "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = client.Read();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  auto response = client.Roundtrip("abcd");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "abcd");
}

TEST_F(HttpServerTest, ChunkedBodyIsDelivered) {
  StartServer();
  Client client(server_->port());
  auto response = client.Roundtrip(
      "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->body, "abcde");
}

TEST_F(HttpServerTest, AsyncHandlerAnswersFromAnotherThread) {
  StartServer();
  Client client(server_->port());
  for (int i = 0; i < 2; ++i) {
    auto response = client.Roundtrip(Get("/async"));
    ASSERT_TRUE(response) << i;
    EXPECT_EQ(response->status, 202);
    EXPECT_EQ(response->body, R"({"async":true})");
  }
}

TEST_F(HttpServerTest, OversizedBodyIsRejectedWithoutReadingIt) {
  StartServer();
  Client client(server_->port());
  // Only the header is sent; the server must answer without waiting for the 2 MB body.
  auto response =
      client.Roundtrip("POST /echo?x=1 HTTP/1.1\r\nHost: test\r\nContent-Length: 2000000\r\n\r\n");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);
  EXPECT_EQ(response->headers["content-type"], "application/json; charset=utf-8");
  Json body = BodyJson(*response);
  EXPECT_EQ(body["statusCode"], 413);
  EXPECT_EQ(body["message"], "Request body exceeds the 1048576-byte limit");
  EXPECT_EQ(body["error"], "Payload Too Large");
  EXPECT_EQ(body["path"], "/echo");
  EXPECT_TRUE(client.ServerClosed());
  EXPECT_EQ(Calls(), 0);
}

TEST_F(HttpServerTest, OversizedBodySentInFullStillGetsTheReply) {
  StartServer();
  Client client(server_->port());
  auto response = client.Roundtrip(Post("/echo", std::string(1100000, 'x')));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);
}

TEST_F(HttpServerTest, OversizedChunkedBodyIsRejected) {
  ServerOptions options;
  options.max_body_bytes = 1000;
  StartServer(options);
  Client client(server_->port());
  std::string chunk = "258\r\n" + std::string(600, 'x') + "\r\n";  // 0x258 = 600
  auto response = client.Roundtrip(
      "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + chunk);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);
  EXPECT_EQ(BodyJson(*response)["message"], "Request body exceeds the 1000-byte limit");
  EXPECT_EQ(Calls(), 0);
}

// A route may take larger bodies than the rest (a bulk import): its limit holds for it alone,
// whether the body is declared or chunked.
TEST_F(HttpServerTest, ARouteCanHaveItsOwnBodyLimit) {
  ServerOptions options;
  options.max_body_bytes = 1000;
  options.body_limit_for = [](const Request& head) -> std::size_t {
    bool allowed = head.method == "POST" && head.path == "/echo" && head.query.size() <= 1 &&
                   head.Header("x-allowed") != "no";
    return allowed ? 5000 : 0;
  };
  StartServer(options);
  Client client(server_->port());
  auto large = client.Roundtrip(Post("/echo?x=1", std::string(4000, 'x')));
  ASSERT_TRUE(large);
  EXPECT_EQ(large->status, 200);
  EXPECT_EQ(large->body.size(), 4000u);
  std::string chunk = "3e8\r\n" + std::string(1000, 'y') + "\r\n";  // 0x3e8 = 1000
  auto chunked =
      client.Roundtrip("POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n" +
                       chunk + chunk + chunk + "0\r\n\r\n");
  ASSERT_TRUE(chunked);
  EXPECT_EQ(chunked->status, 200);
  EXPECT_EQ(chunked->body.size(), 3000u);

  auto over = client.Roundtrip(Post("/echo", std::string(5001, 'x')));
  ASSERT_TRUE(over);
  EXPECT_EQ(over->status, 413);
  EXPECT_EQ(BodyJson(*over)["message"], "Request body exceeds the 5000-byte limit");

  Client other(server_->port());  // every other route keeps max_body_bytes
  auto elsewhere = other.Roundtrip(Post("/hello", std::string(1001, 'x')));
  ASSERT_TRUE(elsewhere);
  EXPECT_EQ(elsewhere->status, 413);
  EXPECT_EQ(BodyJson(*elsewhere)["message"], "Request body exceeds the 1000-byte limit");

  Client refused(server_->port());  // the route's limit depends on the request's head
  auto not_allowed = refused.Roundtrip(
      "POST /echo HTTP/1.1\r\nHost: test\r\nX-Allowed: no\r\n"
      "Content-Length: 4000\r\n\r\n" +
      std::string(4000, 'x'));
  ASSERT_TRUE(not_allowed);
  EXPECT_EQ(not_allowed->status, 413);
  EXPECT_EQ(BodyJson(*not_allowed)["message"], "Request body exceeds the 1000-byte limit");

  Client chunked_over(server_->port());
  auto too_many_chunks = chunked_over.Roundtrip(
      "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + chunk +
      chunk + chunk + chunk + chunk);
  ASSERT_TRUE(too_many_chunks);
  EXPECT_EQ(too_many_chunks->status, 413);
  EXPECT_EQ(Calls(), 2);
}

TEST_F(HttpServerTest, OversizedHeaderIsRejected) {
  StartServer();
  Client client(server_->port());
  auto response = client.Roundtrip(Get("/hello", "X-Big: " + std::string(20000, 'a') + "\r\n"));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 431);
  Json body = BodyJson(*response);
  EXPECT_EQ(body["statusCode"], 431);
  EXPECT_EQ(body["error"], "Request Header Fields Too Large");
  EXPECT_TRUE(client.ServerClosed());
}

TEST_F(HttpServerTest, MalformedRequestLineIsRejected) {
  StartServer();
  Client client(server_->port());
  auto response = client.Roundtrip("GARBAGE\r\n\r\n");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 400);
  Json body = BodyJson(*response);
  EXPECT_EQ(body["statusCode"], 400);
  EXPECT_EQ(body["error"], "Bad Request");
  EXPECT_TRUE(client.ServerClosed());
}

TEST_F(HttpServerTest, RequestIdIsEchoedOrGenerated) {
  StartServer();
  Client client(server_->port());
  auto echoed = client.Roundtrip(Get("/hello", "X-Request-Id: req-1_2.3\r\n"));
  ASSERT_TRUE(echoed);
  EXPECT_EQ(echoed->headers["x-request-id"], "req-1_2.3");
  EXPECT_EQ(LastRequest().request_id, "req-1_2.3");

  for (std::string bad : {std::string("has space"), std::string(65, 'a'), std::string("a/b")}) {
    auto generated = client.Roundtrip(Get("/hello", "X-Request-Id: " + bad + "\r\n"));
    ASSERT_TRUE(generated);
    EXPECT_EQ(generated->headers["x-request-id"].size(), 16u) << bad;
    EXPECT_NE(generated->headers["x-request-id"], bad);
  }
}

TEST_F(HttpServerTest, HandlerExceptionBecomes500) {
  StartServer();
  Client client(server_->port());
  auto response = client.Roundtrip(Get("/throw"));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 500);
  EXPECT_EQ(BodyJson(*response)["statusCode"], 500);
  EXPECT_EQ(BodyJson(*response)["path"], "/throw");
  // The connection stays usable.
  auto next = client.Roundtrip(Get("/hello"));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
}

TEST_F(HttpServerTest, KeepsServingAfterBadRequests) {
  StartServer();
  for (std::string bad :
       {std::string("GARBAGE\r\n\r\n"), Get("/x", "X-Big: " + std::string(20000, 'a') + "\r\n"),
        std::string("POST / HTTP/1.1\r\nContent-Length: 9999999\r\n\r\n"),
        std::string("GET / HTTP/1.1\r\nContent-Length: zz\r\n\r\n")}) {
    Client client(server_->port());
    auto response = client.Roundtrip(bad);
    ASSERT_TRUE(response);
    EXPECT_GE(response->status, 400);
  }
  {
    Client client(server_->port());  // connect, send half a request, vanish
    client.Send("GET /hel");
  }
  Client client(server_->port());
  auto response = client.Roundtrip(Get("/hello"));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
}

TEST_F(HttpServerTest, IdleConnectionsTimeOut) {
  ServerOptions options;
  options.idle_timeout = std::chrono::seconds(1);
  StartServer(options);
  Client client(server_->port());
  ASSERT_TRUE(client.Roundtrip(Get("/hello")));
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(client.ServerClosed());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST_F(HttpServerTest, StopIsPromptAndIdempotent) {
  StartServer();
  std::uint16_t port = server_->port();
  Client idle(port);
  ASSERT_TRUE(idle.Roundtrip(Get("/hello")));  // an idle keep-alive connection
  Client silent(port);                         // connected, never sent anything
  ASSERT_TRUE(silent.connected());

  auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1000));
  server_->Stop();
  EXPECT_TRUE(idle.ServerClosed());
  EXPECT_TRUE(silent.ServerClosed());
  Client late(port);
  EXPECT_FALSE(late.connected());
  server_.reset();  // the destructor stops again
}

TEST_F(HttpServerTest, StopLetsInFlightRequestsFinish) {
  StartServer();
  Client client(server_->port());
  ASSERT_TRUE(client.Send(Get("/slow")));
  while (Calls() == 0) std::this_thread::sleep_for(milliseconds(1));

  auto start = std::chrono::steady_clock::now();
  server_->Stop(milliseconds(3000));
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(2000));
  auto response = client.Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 202);
  EXPECT_EQ(response->headers["connection"], "close");
  EXPECT_TRUE(client.ServerClosed());
}

TEST_F(HttpServerTest, LateDoneAfterStopIsHarmless) {
  StartServer();
  Client client(server_->port());
  ASSERT_TRUE(client.Send(Get("/slow")));
  while (Calls() == 0) std::this_thread::sleep_for(milliseconds(1));
  server_->Stop(milliseconds(10));  // gives up before the handler answers
  server_.reset();
  EXPECT_TRUE(client.ServerClosed());
  // TearDown joins the worker, whose Done now lands on a destroyed server.
}

TEST(HttpServerStartTest, BindFailureIsUnavailable) {
  ServerOptions options;
  options.port = 0;
  auto first = HttpServer::Start(options, Sync([](Request&) { return Reply{}; }));
  ASSERT_TRUE(first.ok());
  options.port = (*first)->port();
  auto second = HttpServer::Start(options, Sync([](Request&) { return Reply{}; }));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kUnavailable);
  EXPECT_EQ(
      second.status().message(),
      "cannot listen on 127.0.0.1:" + std::to_string(options.port) + ": Address already in use");
}

}  // namespace
}  // namespace herald::server
