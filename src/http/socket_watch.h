#pragma once

#include <cstdint>
#include <unordered_map>

namespace herald::http {

// The sockets an event loop watches for libcurl, registered with one epoll instance
// (level-triggered). Connection sockets, which the loop sees opened (Opened) and closed (Closed),
// stay registered while libcurl does not want them (a kept-alive connection between two
// requests), so the next request on them usually costs no epoll_ctl. Any other socket libcurl
// asks for (a resolver's socketpair) is closed without the loop hearing of it, so it is added
// and removed exactly as asked: a socket number reused after such a close is never mistaken for
// a registered one. Not thread-safe: the loop's thread only.
class SocketWatch {
 public:
  explicit SocketWatch(int epoll_fd) : epoll_fd_(epoll_fd) {}

  void Opened(int fd);  // a connection socket exists
  void Closed(int fd);  // it is being closed (closing also takes it out of the epoll set)
  // libcurl wants `events` (EPOLLIN / EPOLLOUT bits; 0 still reports errors and hang-ups).
  void Want(int fd, std::uint32_t events);
  void Unwant(int fd);  // libcurl no longer watches `fd`
  // An event arrived for `fd`: true if it is for libcurl; false for an idle connection's (closed
  // by the peer, most likely), which then leaves the epoll set until it is wanted again.
  bool Deliver(int fd);

 private:
  struct Connection {
    std::uint32_t events = 0;
    bool registered = false;
    bool wanted = false;
  };
  int epoll_fd_;
  std::unordered_map<int, Connection> connections_;
};

}  // namespace herald::http
