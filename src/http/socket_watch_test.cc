#include "http/socket_watch.h"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

namespace herald::http {
namespace {

class SocketWatchTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_GE(epoll_fd_, 0); }
  void TearDown() override {
    for (int fd : fds_) close(fd);  // some were closed by the test already: harmless here
    close(epoll_fd_);
  }
  // A connected pair of stream sockets; both are closed at the end of the test.
  std::pair<int, int> Pair() {
    int sv[2] = {-1, -1};
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    fds_.push_back(sv[0]);
    fds_.push_back(sv[1]);
    return {sv[0], sv[1]};
  }
  // Moves socket `fd` to descriptor number `number` (free, or `fd` itself).
  static void MoveTo(int fd, int number) {
    if (fd == number) return;
    ASSERT_EQ(dup2(fd, number), number);
    close(fd);
  }
  static void Poke(int peer) { ASSERT_EQ(send(peer, "x", 1, MSG_NOSIGNAL), 1); }
  // The descriptors epoll reports ready now.
  std::vector<int> Ready() {
    epoll_event events[8];
    int n = epoll_wait(epoll_fd_, events, 8, 0);
    std::vector<int> out;
    for (int i = 0; i < n; ++i) out.push_back(events[i].data.fd);
    return out;
  }

  int epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  SocketWatch watch_{epoll_fd_};
  std::vector<int> fds_;
};

TEST_F(SocketWatchTest, AnIdleConnectionStaysRegisteredUntilItReportsSomething) {
  auto [conn, peer] = Pair();
  watch_.Opened(conn);
  watch_.Want(conn, EPOLLIN);
  EXPECT_TRUE(Ready().empty());
  watch_.Unwant(conn);  // between two requests: still registered
  watch_.Want(conn, EPOLLIN);
  Poke(peer);
  EXPECT_EQ(Ready(), std::vector<int>{conn});
  EXPECT_TRUE(watch_.Deliver(conn));  // wanted: for libcurl

  watch_.Unwant(conn);
  EXPECT_EQ(Ready(), std::vector<int>{conn});  // idle, yet readable
  EXPECT_FALSE(watch_.Deliver(conn));          // not for libcurl: it leaves the set
  EXPECT_TRUE(Ready().empty());                // no level-triggered repeats
  watch_.Want(conn, EPOLLIN);                  // picked again: registered again
  EXPECT_EQ(Ready(), std::vector<int>{conn});
  EXPECT_TRUE(watch_.Deliver(conn));
}

TEST_F(SocketWatchTest, ANumberReusedAfterAnUnannouncedCloseIsRegisteredAfresh) {
  // libcurl's resolver socket: watched, unwatched, then closed without Closed().
  auto [resolver, resolver_peer] = Pair();
  const int number = resolver;
  watch_.Want(number, EPOLLIN);
  watch_.Unwant(number);
  close(number);
  // A connection socket gets the same number.
  auto [conn, conn_peer] = Pair();
  MoveTo(conn, number);
  watch_.Opened(number);
  watch_.Want(number, EPOLLIN);
  Poke(conn_peer);
  EXPECT_EQ(Ready(), std::vector<int>{number});

  // A connection closed through Closed() leaves nothing behind for the number's next owner.
  watch_.Closed(number);
  close(number);
  auto [other, other_peer] = Pair();
  MoveTo(other, number);
  fds_.push_back(number);
  watch_.Want(number, EPOLLIN);  // not a connection this time
  Poke(other_peer);
  EXPECT_EQ(Ready(), std::vector<int>{number});
  EXPECT_TRUE(watch_.Deliver(number));
  watch_.Unwant(number);  // removed at once
  EXPECT_TRUE(Ready().empty());
}

}  // namespace
}  // namespace herald::http
