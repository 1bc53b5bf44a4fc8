#include "app/app.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <map>

#include "api/api.h"
#include "app/data_dir.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/signals.h"
#include "core/time.h"
#include "delivery/dispatcher.h"
#include "delivery/planner.h"
#include "delivery/webhook_sender.h"
#include "http/client.h"
#include "providers/registry.h"
#include "server/error_reply.h"
#include "server/http_server.h"
#include "server/router.h"
#include "store/sqlite/sqlite_store.h"
#include "wire/wire.h"

namespace herald::app {
namespace {

struct Options {
  std::string listen = "127.0.0.1:3000";
  std::string data_dir = "./herald-data";
  std::string database;
  std::string log_level = "info";
  int http_threads = 2;
};

std::string EnvOr(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::string(value) : std::move(fallback);
}

// An integer in [lo, hi] from the environment, else `fallback`.
long long EnvInRange(const char* name, long long fallback, long long lo, long long hi) {
  const char* raw = std::getenv(name);
  if (!raw || !*raw) return fallback;
  char* end = nullptr;
  errno = 0;
  long long value = std::strtoll(raw, &end, 10);
  if (errno == 0 && *end == '\0' && value >= lo && value <= hi) return value;
  spdlog::warn(
      "config_ignored variable={} value=\"{}\" reason=\"not an integer in [{}, {}]\" using={}",
      name, raw, lo, hi, fallback);
  return fallback;
}

// A positive integer from the environment, else `fallback`.
long long EnvPositive(const char* name, long long fallback) {
  return EnvInRange(name, fallback, 1, std::numeric_limits<long long>::max());
}

bool EnvFlag(const char* name) {
  const char* value = std::getenv(name);
  return value && (std::string_view(value) == "1" || std::string_view(value) == "true");
}

Result<std::pair<std::string, std::uint16_t>> ParseListen(const std::string& listen) {
  std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument("--listen must be HOST:PORT, got '" + listen + "'");
  }
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = 0;
  try {
    std::size_t used = 0;
    port = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1) port = -1;
  } catch (...) {
    port = -1;
  }
  if (port < 0 || port > 65535) {
    return Status::InvalidArgument("--listen port must be 0..65535, got '" + listen + "'");
  }
  return std::make_pair(host, static_cast<std::uint16_t>(port));
}

Status CheckDatabase(const Options& options) {
  if (!options.database.empty() && options.database.rfind("sqlite:", 0) != 0) {
    return Status::InvalidArgument("--database " + options.database.substr(0, 11) +
                                   "... is not supported yet; the embedded SQLite store is used "
                                   "when --database is not set");
  }
  return Status::Ok();
}

std::string DatabasePath(const Options& options) {
  if (options.database.rfind("sqlite://", 0) == 0) return options.database.substr(9);
  if (options.database.rfind("sqlite:", 0) == 0) return options.database.substr(7);
  return options.data_dir + "/herald.db";
}

int Fail(const Status& status) {
  std::fprintf(stderr, "herald: %s\n", status.message().c_str());
  return 1;
}

int Serve(const Options& options) {
  if (Status st = CheckDatabase(options); !st.ok()) return Fail(st);
  Result<std::pair<std::string, std::uint16_t>> listen = ParseListen(options.listen);
  if (!listen.ok()) return Fail(listen.status());
  if (Status st = EnsureDataDir(options.data_dir); !st.ok()) return Fail(st);
  Result<std::unique_ptr<DataDirLock>> lock = DataDirLock::Acquire(options.data_dir);
  if (!lock.ok()) return Fail(lock.status());
  // A database outside the data directory is owned the same way: two servers never share one.
  Result<std::unique_ptr<DataDirLock>> db_lock =
      DataDirLock::AcquireForDatabase(DatabasePath(options), options.data_dir);
  if (!db_lock.ok()) return Fail(db_lock.status());
  Result<std::unique_ptr<crypto::KeyRing>> keys = LoadKeyRing(options.data_dir, /*create=*/true);
  if (!keys.ok()) return Fail(keys.status());
  store::SqliteOptions store_options;
  store_options.path = DatabasePath(options);
  // Enough readers for the API's worker pool, the dispatcher and the I/O threads at once, so an
  // I/O thread (workflow or topic lookups on the trigger path) rarely waits for one.
  store_options.read_connections = 8;
  store_options.max_queued_triggers =
      EnvPositive("HERALD_MAX_QUEUED_TRIGGERS", store_options.max_queued_triggers);
  // 0: SQLite's own VFS instead of Herald's WAL write-gathering one (sqlite/wal_vfs.h).
  store_options.use_wal_vfs = EnvInRange("HERALD_SQLITE_WAL_VFS", 1, 0, 1) != 0;
  // Filled below, before anything is delivered (events are rendered only for outcomes).
  std::map<std::string, std::string> organization_of;
  store_options.render_event = [&organization_of](const store::DeliveryEvent& event) {
    auto it = organization_of.find(event.environment_id);
    return wire::EventBody(event, it == organization_of.end() ? "" : it->second);
  };
  Result<std::unique_ptr<store::Store>> store = store::OpenSqliteStore(store_options, **keys);
  if (!store.ok()) return Fail(store.status());
  Result<std::vector<NewKey>> generated = BootstrapEnvironments(**store, **keys);
  if (!generated.ok()) return Fail(generated.status());
  for (const NewKey& key : *generated) {
    // Printed once, to stdout (never to the log); `herald keys` shows them again.
    std::printf("API key for environment %s: %s\n", key.environment.c_str(), key.key.c_str());
  }
  std::fflush(stdout);
  Result<std::vector<store::Environment>> environments = (*store)->ListEnvironments();
  if (!environments.ok()) return Fail(environments.status());

  tmpl::TemplateCache templates;
  for (const store::Environment& env : *environments) organization_of[env.id] = env.organization_id;
  store::MessagePlanner planner = delivery::MakePlanner(templates, organization_of);

  providers::ProviderSettings provider_settings;
  provider_settings.expo_receipt_delay =
      std::chrono::seconds(EnvPositive("HERALD_EXPO_RECEIPT_DELAY", 900));
  providers::SetProviderSettings(provider_settings);

  bool allow_private = EnvFlag("HERALD_ALLOW_PRIVATE_TARGETS");
  http::ClientOptions client_options;
  client_options.allow_private_targets = allow_private;
  client_options.ca_file = EnvOr("HERALD_CA_FILE", "");
  client_options.default_timeout =
      std::chrono::milliseconds(EnvPositive("HERALD_HTTP_TIMEOUT_MS", 15000));
  client_options.connect_timeout =
      std::min(client_options.connect_timeout, client_options.default_timeout);
  client_options.default_concurrency_per_key =
      static_cast<std::size_t>(EnvPositive("HERALD_INTEGRATION_CONCURRENCY", 64));
  // Optionally, sending runs below the API's priority: when the CPU is short, a burst of triggers
  // is then acknowledged (durably) first and delivered as the CPU frees up, at the price of
  // delivery latency during the burst. Off by default (bench/README.md has both).
  int delivery_nice = static_cast<int>(EnvInRange("HERALD_DELIVERY_NICE", 0, 0, 19));
  client_options.thread_nice = delivery_nice;
  // HERALD_HTTP2_ENGINE=curl sends APNs and FCM through libcurl too (the engine before the
  // nghttp2 one: for comparisons, and as a way back should a provider misbehave with it).
  const char* h2_engine = std::getenv("HERALD_HTTP2_ENGINE");
  const bool curl_only = h2_engine != nullptr && std::string_view(h2_engine) == "curl";
  std::unique_ptr<http::Client> client =
      curl_only ? http::NewCurlClient(client_options) : http::NewClient(client_options);

  delivery::DispatcherOptions dispatch_options;
  dispatch_options.owner = "herald-" + NewObjectId();
  dispatch_options.retry = delivery::RetryPolicy::FromEnvironment();
  dispatch_options.thread_nice = delivery_nice;
  dispatch_options.request_timeout = client_options.default_timeout;
  dispatch_options.lease = std::max(dispatch_options.lease, 4 * client_options.default_timeout);
  dispatch_options.max_in_flight = static_cast<std::size_t>(
      EnvPositive("HERALD_MAX_IN_FLIGHT", static_cast<long long>(dispatch_options.max_in_flight)));
  dispatch_options.token_inactivity = std::chrono::seconds(
      EnvPositive("HERALD_TOKEN_INACTIVE_SECONDS", dispatch_options.token_inactivity.count() / 1000));
  delivery::Dispatcher dispatcher(**store, *client, planner, dispatch_options);

  delivery::WebhookSenderOptions webhook_options;
  webhook_options.owner = dispatch_options.owner;
  webhook_options.timeout = client_options.default_timeout;
  webhook_options.lease = std::max(webhook_options.lease, 4 * client_options.default_timeout);
  webhook_options.retry = delivery::RetryPolicy::FromEnvironment("HERALD_WEBHOOK_RETRY",
                                                                 webhook_options.retry);
  delivery::WebhookSender webhooks(**store, *client, webhook_options);

  api::ApiOptions api_options;
  api_options.token_policy.allow_private_targets = allow_private;
  api_options.on_work = [&dispatcher] { dispatcher.Wake(); };
  api_options.on_unwanted = [&dispatcher](store::UnwantedSends what) {
    dispatcher.Withdraw(std::move(what));
  };
  api_options.on_integration_changed = [&dispatcher](const std::string& id) {
    dispatcher.ForgetIntegration(id);
  };
  api_options.test_connection = [&dispatcher](std::string env, std::string id, auto done) {
    dispatcher.TestConnection(std::move(env), std::move(id), std::move(done));
  };
  api_options.send_test = [&dispatcher](std::string env, std::string id, std::string token,
                                        std::string title, std::string body, auto done) {
    dispatcher.SendTest(std::move(env), std::move(id), std::move(token), std::move(title),
                        std::move(body), std::move(done));
  };
  api::Api api(**store, *environments, templates, api_options);
  dispatcher.SetTriggerDecoder(
      [&api](const store::QueuedTrigger& queued) { return api.DecodeQueued(queued); });
  server::Router router;
  api.AddRoutes(router);
  router.Add("GET", "/healthz", server::Sync([](server::Request&) {
               return server::JsonReply({{"status", "ok"}});
             }));
  router.Add("GET", "/readyz", server::Sync([](server::Request&) {
               return server::JsonReply({{"status", "ready"}});
             }));

  server::ServerOptions server_options;
  server_options.host = listen->first;
  server_options.port = listen->second;
  server_options.threads = options.http_threads;
  // Handlers never block an I/O thread (those that wait on the store run on the API's worker
  // pool), so each connection can stay on one thread's own event loop.
  server_options.pin_connections = true;
  server_options.body_limit_for = [&router](const server::Request& head) {
    return router.BodyLimitFor(head);
  };
  Result<std::unique_ptr<server::HttpServer>> server = server::HttpServer::Start(
      server_options, [&router](server::Request& request, server::Done done) {
        router.Dispatch(request, std::move(done));
      });
  if (!server.ok()) return Fail(server.status());
  dispatcher.Start();
  webhooks.Start();
  spdlog::info("herald serving listen={}:{} data={}", listen->first, (*server)->port(),
               options.data_dir);

  int received = WaitForStopSignal();
  spdlog::info("herald stopping signal={}", received);
  // Stop accepting, let in-flight API requests finish, then drain in-flight sends for a grace
  // period; anything not finished stays durable and is taken back on the next start.
  (*server)->Stop();
  dispatcher.Stop(std::chrono::milliseconds(EnvPositive("HERALD_SHUTDOWN_GRACE_MS", 10000)));
  webhooks.Stop();  // the client is shutting down: what it cuts short goes out after a restart
  // When Flush returns, every earlier write has committed and run its callback, so none can
  // reach the API or dispatcher later.
  if (Status st = (*store)->Flush(); !st.ok()) {
    spdlog::error("herald stopping: the last writes may not be durable: {}", st.message());
  }
  return 0;
}

int Keys(const Options& options) {
  Result<std::unique_ptr<crypto::KeyRing>> keys = LoadKeyRing(options.data_dir, /*create=*/false);
  if (!keys.ok()) return Fail(keys.status());
  if (Status st = CheckDatabase(options); !st.ok()) return Fail(st);
  Result<std::unique_ptr<store::Store>> store =
      store::OpenSqliteStore({DatabasePath(options), 1}, **keys);
  if (!store.ok()) return Fail(store.status());
  Result<std::vector<store::Environment>> environments = (*store)->ListEnvironments();
  if (!environments.ok()) return Fail(environments.status());
  if (environments->empty()) return Fail(Status::NotFound("no environments yet: run herald serve"));
  for (const store::Environment& env : *environments) {
    Result<std::string> key = (*keys)->Open(env.api_key_sealed, env.id);
    if (!key.ok()) return Fail(Status::Internal("cannot decrypt the API key of " + env.name));
    std::printf("%s %s\n", env.name.c_str(), key->c_str());
  }
  return 0;
}

int Vapid() {
  auto [private_key, public_key] = crypto::GenerateP256KeyPair();
  std::printf("{\"apiKey\":\"%s\",\"secretKey\":\"%s\"}\n",
              crypto::Base64UrlEncode(public_key).c_str(),
              crypto::Base64UrlEncode(private_key).c_str());
  return 0;
}

}  // namespace

int Main(int argc, char** argv) {
  // In every thread; `serve` takes them with WaitForStopSignal().
  BlockStopSignals();

  Options options;
  options.listen = EnvOr("HERALD_LISTEN", options.listen);
  options.data_dir = EnvOr("HERALD_DATA_DIR", options.data_dir);
  options.database = EnvOr("HERALD_DATABASE_URL", options.database);
  options.log_level = EnvOr("HERALD_LOG_LEVEL", options.log_level);

  CLI::App cli{"Herald: a self-hosted push notification server with Novu's API"};
  cli.require_subcommand(1);
  auto add_data = [&](CLI::App* cmd) {
    cmd->add_option("--data", options.data_dir, "data directory (env HERALD_DATA_DIR)");
    cmd->add_option("--database", options.database, "database URL (env HERALD_DATABASE_URL)");
  };
  CLI::App* serve = cli.add_subcommand("serve", "run the API and delivery in one process");
  serve->add_option("--listen", options.listen, "HOST:PORT (env HERALD_LISTEN)");
  serve
      ->add_option("--http-threads", options.http_threads,
                   "HTTP I/O threads (env HERALD_HTTP_THREADS)")
      ->envname("HERALD_HTTP_THREADS")
      ->check(CLI::Range(1, 64));
  serve->add_option("--log-level", options.log_level, "trace|debug|info|warn|error");
  add_data(serve);
  CLI::App* keys = cli.add_subcommand("keys", "print the API key of each environment");
  add_data(keys);
  cli.add_subcommand("vapid", "generate a VAPID key pair for a web-push integration");
  CLI11_PARSE(cli, argc, argv);

  InitLogging(options.log_level);
  if (serve->parsed()) return Serve(options);
  if (keys->parsed()) return Keys(options);
  return Vapid();
}

}  // namespace herald::app
