#!/usr/bin/env bash
# Installs what Herald needs to build (and, with --test, to run its test suites; with --bench, to
# run `make bench`, bench/run_all.mjs) on Debian 12.
# Idempotent: packages already present are skipped, and apt is not touched when nothing is missing.
set -euo pipefail

BUILD_PACKAGES=(cmake ninja-build g++ ccache pkg-config libboost-dev libcurl4-openssl-dev
  libnghttp2-dev libssl-dev libsqlite3-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev libmimalloc-dev zlib1g-dev)

want_tests=0
[[ "${1:-}" == "--test" ]] && want_tests=1
# The benchmarks run the reference libraries and the Expo mock (test/e2e's packages, Node,
# openssl, as the tests do), h2load (nghttp2-client: the transport ceiling), jq and curl
# (bench/e2e/run.sh) and strip (binutils: the footprint).
[[ "${1:-}" == "--bench" ]] && BUILD_PACKAGES+=(curl jq nghttp2-client binutils) && want_tests=1

# With --test: the openssl CLI makes the test CAs (e2e provider mocks, the http client's TLS
# tests) and nghttpd serves the http client's HTTP/2 tests. The http tests skip without them, so
# a machine that runs the suites (CI) must have them.
TEST_PACKAGES=(openssl nghttp2-server)
if ((want_tests)); then
  BUILD_PACKAGES+=("${TEST_PACKAGES[@]}")
fi

missing=()
for pkg in "${BUILD_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if ((want_tests)) && ! command -v node >/dev/null 2>&1; then
  missing+=(nodejs npm)  # only where the machine has no Node.js of its own
fi

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "${missing[@]}"
fi

if ((want_tests)); then
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  # One package per batch of devDependencies: a node_modules from before a batch was added is redone.
  e2e_ok=1
  for pkg in @novu/api http_ece web-push @parse/node-apn firebase-admin expo-server-sdk; do
    [[ -d "$root/test/e2e/node_modules/$pkg" ]] || e2e_ok=0
  done
  if ((!e2e_ok)); then
    echo "install-deps: npm ci in test/e2e"
    (cd "$root/test/e2e" && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
