#include "http/socket_watch.h"

#include <sys/epoll.h>

#include <cerrno>

namespace herald::http {

void SocketWatch::Opened(int fd) { connections_[fd] = Connection{}; }

void SocketWatch::Closed(int fd) { connections_.erase(fd); }

void SocketWatch::Want(int fd, std::uint32_t events) {
  epoll_event event{};
  event.events = events;
  event.data.fd = fd;
  auto it = connections_.find(fd);
  if (it == connections_.end()) {
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event) != 0 && errno == ENOENT) {
      epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event);
    }
    return;
  }
  Connection& c = it->second;
  if (!c.registered) {
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0 && errno == EEXIST) {
      epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event);
    }
  } else if (c.events != events) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event);
  }
  c = Connection{events, /*registered=*/true, /*wanted=*/true};
}

void SocketWatch::Unwant(int fd) {
  auto it = connections_.find(fd);
  if (it == connections_.end()) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);  // may already be closed
  } else {
    it->second.wanted = false;  // stays registered until closed or until it reports something
  }
}

bool SocketWatch::Deliver(int fd) {
  auto it = connections_.find(fd);
  if (it == connections_.end() || it->second.wanted) return true;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  it->second.registered = false;
  return false;
}

}  // namespace herald::http
