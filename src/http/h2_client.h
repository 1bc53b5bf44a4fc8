// The nghttp2 engine (NewH2Client; NewClient's HTTP/2 side): HTTP/2 for the requests that ask
// for it (Request::http2_prior_knowledge: APNs, FCM), on an I/O thread of its own. Threads other
// than the I/O thread only touch the mutex-guarded inbox (new requests, limit changes, resolved
// names, flags); admission, origins, connections (h2_connection.h) and the deadline heap belong
// to the I/O thread.
//
// A loop turn: take the inbox; admit what the per-key limits allow; give waiting requests
// streams on their origin's connections (opening one when all are full); write what each touched
// connection has, one send() each; wait on epoll; read; expire deadlines.
//
// h2_client.cc has the loop, admission and completion; h2_origins.cc the origins, their
// connections, name resolution and the periodic sweep. Internal to src/http.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "http/client.h"
#include "http/engine_inbox.h"
#include "http/h2_connection.h"
#include "http/h2_resolver.h"

namespace herald::http::h2 {

inline constexpr auto kSweepInterval = std::chrono::seconds(1);

struct StoreDeleter {
  void operator()(x509_store_st* store) const;
};

class H2Client final : public InboxEngine<Transfer>, private ConnectionOwner {
 public:
  explicit H2Client(const ClientOptions& options);
  ~H2Client() override;

 private:
  struct KeyState {
    std::size_t active = 0;
    std::deque<Transfer*> waiting;
    bool pump_queued = false;  // in keys_to_pump_
  };
  struct CachedAddresses {
    std::vector<sockaddr_storage> addresses;
    Clock::time_point expires;
  };

  // ConnectionOwner.
  void Finish(Transfer* transfer, Outcome outcome) override;
  void Drop(Transfer* transfer) override { Destroy(transfer); }
  void Resend(Transfer* transfer) override;
  void CapacityChanged(Connection& connection) override;
  void SetupFailed(Connection& connection, TransportError error,
                   const std::string& message) override;
  void Closed(Connection& connection) override;
  void WantFlush(Connection& connection) override;

  // I/O thread.
  void Run();
  void Enqueue(Transfer* transfer);
  void Pump(const std::string& key);
  std::size_t LimitFor(const std::string& key) const;
  void Start(Transfer* transfer);
  TransportError Prepare(Transfer& transfer, std::string* error);
  bool EnsureTrust(std::string* error);
  Origin& OriginFor(const Transfer& transfer);
  void QueueDispatch(Origin& origin);
  void Dispatch(Origin& origin);
  void OpenConnection(Origin& origin);
  void ConnectTo(Connection& connection, const std::vector<sockaddr_storage>& addresses);
  void FailPending(Origin& origin, TransportError error, const std::string& message);
  void OnResolved(Resolution resolution);
  void Settle();
  void WaitAndAct();
  void Expire(Clock::time_point now);
  void Sweep(Clock::time_point now);
  void FailEverything();
  void Destroy(Transfer* transfer);
  std::chrono::milliseconds TimeoutOf(const Transfer& transfer) const;

  // The deadline heap (a binary min-heap; each transfer knows its slot).
  void HeapPush(Transfer* transfer);
  void HeapRemove(Transfer* transfer);
  void HeapSwap(std::size_t a, std::size_t b);
  void SiftUp(std::size_t slot);
  void SiftDown(std::size_t slot);

  const ClientOptions options_;
  ConnectionContext context_;

  std::vector<Resolution> resolved_;  // guarded by mu_

  // I/O thread only.
  std::unordered_map<std::string, std::size_t> limits_;
  std::unordered_map<std::string, KeyState> keys_;
  std::vector<std::string> keys_to_pump_;
  // By scheme, host, port and connection group; then one per client certificate.
  std::unordered_map<std::string, std::vector<std::unique_ptr<Origin>>> origins_;
  std::vector<Origin*> dispatch_queue_;
  std::vector<Connection*> flush_queue_;
  std::vector<Connection*> closed_;  // destroyed at the end of the loop turn
  std::vector<Transfer*> deadlines_;
  std::unordered_map<std::string, CachedAddresses> dns_cache_;
  std::unordered_set<std::string> resolving_;
  Clock::time_point next_sweep_;
  bool trust_loaded_ = false;  // the CAs are parsed on the first https request
  std::unique_ptr<x509_store_st, StoreDeleter> trust_store_;
  std::string trust_error_;

  std::unique_ptr<Resolver> resolver_;  // started by the first host name to resolve
};
}  // namespace herald::http::h2
