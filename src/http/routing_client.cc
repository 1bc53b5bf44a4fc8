// NewClient: requests with Request::http2_prior_knowledge (APNs, FCM) go to the nghttp2 engine,
// everything else to the libcurl one. Limits go to both; both stop within one grace period.
#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "http/client.h"
#include "http/engine.h"

namespace herald::http {
namespace {

class RoutingClient final : public Client {
 public:
  explicit RoutingClient(const ClientOptions& options)
      : curl_(NewCurlEngine(options)), h2_(NewH2Engine(options)) {}

  void Send(Request request, Callback done) override {
    Engine& engine = request.http2_prior_knowledge ? *h2_ : *curl_;
    engine.Send(std::move(request), std::move(done));
  }

  void SetConcurrency(const std::string& key, std::size_t limit) override {
    curl_->SetConcurrency(key, limit);
    h2_->SetConcurrency(key, limit);
  }

  std::size_t InFlight() const override { return curl_->InFlight() + h2_->InFlight(); }

  void Shutdown(std::chrono::milliseconds grace) override {
    if (curl_->OnIoThread() || h2_->OnIoThread()) {  // a callback: begin, never wait
      curl_->BeginShutdown();
      h2_->BeginShutdown();
      return;
    }
    std::lock_guard lock(shutdown_mu_);
    curl_->StopAccepting();
    h2_->StopAccepting();
    const auto deadline = std::chrono::steady_clock::now() + grace;
    h2_->Shutdown(grace);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    curl_->Shutdown(std::max(left, std::chrono::milliseconds(0)));
  }

 private:
  std::unique_ptr<Engine> curl_;
  std::unique_ptr<Engine> h2_;
  std::mutex shutdown_mu_;
};

}  // namespace

std::unique_ptr<Client> NewClient(const ClientOptions& options) {
  return std::make_unique<RoutingClient>(options);
}

}  // namespace herald::http
