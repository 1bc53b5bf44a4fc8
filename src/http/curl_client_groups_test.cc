// Request::connection_group, for both engines: requests of one group share that group's
// connections, requests of different groups (the default, empty one included) never share one,
// one after another or at the same time, over HTTP/1.1 keep-alive (libcurl) and over HTTP/2
// (each engine against nghttpd, skipped when absent; the nghttp2 engine against TestServer too).
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "http/client.h"
#include "http/http_test_util.h"

namespace herald::http {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the shared http test helpers

class HttpClientConnectionGroupTest : public HttpEngineTest {};
INSTANTIATE_TEST_SUITE_P(Engines, HttpClientConnectionGroupTest, AllEngines(),
                         HttpEngineTest::Name);

std::string NameOf(const std::string& group) { return group.empty() ? "default" : group; }

// A GET of /<group>/<n> in `group` (the path tells the server which group sent it).
Request InGroup(const std::string& base_url, const std::string& group, int n) {
  Request request = Get(base_url + NameOf(group) + "/" + std::to_string(n));
  request.connection_group = group;
  return request;
}

// The connections each group's requests came on, by the group named in the path.
std::map<std::string, std::set<int>> ConnectionsByGroup(const TestServer& server) {
  std::map<std::string, std::set<int>> connections;
  for (const SeenRequest& seen : server.requests()) {
    connections[seen.target.substr(1, seen.target.find('/', 1) - 1)].insert(seen.connection);
  }
  return connections;
}

// No connection carried requests of two groups.
void ExpectDisjoint(const std::map<std::string, std::set<int>>& connections) {
  std::map<int, std::string> owner;
  for (const auto& [group, ids] : connections) {
    for (int id : ids) {
      auto [it, fresh] = owner.emplace(id, group);
      EXPECT_TRUE(fresh) << "connection " << id << " carried requests of " << it->second
                         << " and of " << group;
    }
  }
}

Reply Ok(const SeenRequest& request) {
  return Reply{Reply::kRespond, HttpResponse(200, request.target)};
}

TEST_P(HttpClientConnectionGroupTest, RequestsOfOneGroupReuseOneConnection) {
  TestServer server(Ok, Server());
  auto client = NewEngineClient(LoopbackOptions());
  for (int i = 0; i < 5; ++i) {
    Outcome outcome = SendAndWait(*client, InGroup(server.Url(), "team-a", i));
    ASSERT_TRUE(outcome.ok()) << outcome.error_message;
    EXPECT_EQ(outcome.response.body, "/team-a/" + std::to_string(i));
  }
  EXPECT_EQ(server.accepted(), 1);
  EXPECT_EQ(ConnectionsByGroup(server)["team-a"].size(), 1u);
}

// Taking turns: each group (the default one a third) keeps its own kept-alive connection, and
// an idle connection of another group to the same origin is never picked.
TEST_P(HttpClientConnectionGroupTest, GroupsNeverShareAConnectionOneAfterAnother) {
  TestServer server(Ok, Server());
  auto client = NewEngineClient(LoopbackOptions());
  for (int round = 0; round < 3; ++round) {
    for (const std::string group : {"team-a", "team-b", ""}) {
      Outcome outcome = SendAndWait(*client, InGroup(server.Url(), group, round));
      ASSERT_TRUE(outcome.ok()) << NameOf(group) << ": " << outcome.error_message;
    }
  }
  EXPECT_EQ(server.accepted(), 3);
  auto connections = ConnectionsByGroup(server);
  ASSERT_EQ(connections.size(), 3u);
  for (const auto& [group, ids] : connections) EXPECT_EQ(ids.size(), 1u) << group;
  ExpectDisjoint(connections);
}

TEST_P(HttpClientConnectionGroupTest, GroupsNeverShareAConnectionWhenConcurrent) {
  TestServer server(
      [](const SeenRequest& request) {
        return Reply{Reply::kRespond, HttpResponse(200, request.target), milliseconds(20)};
      },
      Server());
  auto client = NewEngineClient(LoopbackOptions());
  const std::vector<std::string> groups = {"team-a", "team-b"};

  // One request at a time per group (its concurrency key), both groups at once: each group
  // reuses its one connection while the other group's is busy or idle.
  Collector serial;
  for (const std::string& group : groups) client->SetConcurrency(group, 1);
  for (int i = 0; i < 10; ++i) {
    for (const std::string& group : groups) {
      Request request = InGroup(server.Url(), group, i);
      request.concurrency_key = group;
      client->Send(request, serial.callback());
    }
  }
  ASSERT_TRUE(serial.WaitFor(20, milliseconds(5000)));
  for (const auto& outcome : serial.outcomes()) EXPECT_TRUE(outcome.ok()) << outcome.error_message;
  EXPECT_EQ(server.max_concurrent(), 2);  // the groups did run side by side
  EXPECT_EQ(server.accepted(), 2);
  auto connections = ConnectionsByGroup(server);
  for (const std::string& group : groups) EXPECT_EQ(connections[group].size(), 1u) << group;
  ExpectDisjoint(connections);

  // All at once: HTTP/1.1 opens more connections (HTTP/2 needs none), never one for two groups.
  Collector burst;
  for (int i = 0; i < 8; ++i) {
    for (const std::string& group : groups) {
      client->Send(InGroup(server.Url(), group, 100 + i), burst.callback());
    }
  }
  ASSERT_TRUE(burst.WaitFor(16, milliseconds(5000)));
  for (const auto& outcome : burst.outcomes()) EXPECT_TRUE(outcome.ok()) << outcome.error_message;
  ASSERT_TRUE(WaitUntil([&] { return client->InFlight() == 0; }));
  connections = ConnectionsByGroup(server);
  ExpectDisjoint(connections);
  const int opened = server.accepted();
  EXPECT_GE(opened, 2);

  // Afterwards each group takes one of its own idle connections again: nothing new is opened.
  for (const std::string& group : groups) {
    Outcome outcome = SendAndWait(*client, InGroup(server.Url(), group, 200));
    ASSERT_TRUE(outcome.ok()) << outcome.error_message;
  }
  EXPECT_EQ(server.accepted(), opened);
  auto after = ConnectionsByGroup(server);
  ExpectDisjoint(after);
  for (const std::string& group : groups) EXPECT_EQ(after[group], connections[group]) << group;
}

// HTTP/2 (h2 over TLS, counted through a TCP proxy): concurrent requests multiplex on one
// connection per group, where one group alone needs one connection in all.
TEST_P(HttpClientConnectionGroupTest, EachGroupMultiplexesOnItsOwnHttp2Connection) {
  std::string nghttpd = FindProgram("nghttpd");
  std::string openssl = FindProgram("openssl");
  if (nghttpd.empty() || openssl.empty()) GTEST_SKIP() << "needs nghttpd and openssl";
  TempDir dir;
  TestPki pki(openssl, dir);
  ASSERT_TRUE(pki.MakeCa("ca", "Herald test CA"));
  ASSERT_TRUE(pki.IssueServer("server", "ca"));
  for (const char* name : {"team-a", "team-b", "default"}) {
    std::filesystem::create_directory(dir.File(name));
    for (int i = 0; i < 20; ++i) dir.Write(std::string(name) + "/" + std::to_string(i), name);
  }
  Nghttpd server(nghttpd, dir, dir.File("server.key"), dir.File("server.pem"));
  ASSERT_TRUE(server.Ready());
  CountingProxy proxy(server.port());
  ClientOptions options = LoopbackOptions();
  options.ca_file = dir.File("ca.pem");
  auto client = NewEngineClient(options);
  const std::string base = "https://127.0.0.1:" + std::to_string(proxy.port()) + "/";

  Collector collector;
  for (int i = 0; i < 20; ++i) {
    for (const std::string group : {"team-a", "team-b", ""}) {
      Request request = InGroup(base, group, i);
      client->Send(request, [group, done = collector.callback()](Outcome outcome) {
        EXPECT_EQ(outcome.response.body, NameOf(group));
        done(std::move(outcome));
      });
    }
  }
  ASSERT_TRUE(collector.WaitFor(60, milliseconds(5000)));
  for (const auto& outcome : collector.outcomes()) {
    ASSERT_TRUE(outcome.ok()) << outcome.error_message;
    EXPECT_EQ(outcome.response.http_version, "2");
  }
  EXPECT_EQ(proxy.accepted(), 3);
}

}  // namespace
}  // namespace herald::http
