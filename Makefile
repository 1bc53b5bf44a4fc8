# What a newcomer types. Each target installs what it needs first (idempotent).
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)

SANITIZE_DIR ?= build-asan

.PHONY: all deps test-deps bench-deps configure build run test unit e2e sanitize bench clean

all: build

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh --test

configure:
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null

build: deps configure
	@cmake --build $(BUILD_DIR) --target herald -j $(JOBS)

run: build
	./$(BUILD_DIR)/herald serve

# Every suite: GoogleTest (via CTest), then the Node end-to-end suites against the real binary.
test: test-deps configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)
	@$(MAKE) --no-print-directory unit e2e

unit:
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

e2e:
	cd test/e2e && HERALD_BIN=$(abspath $(BUILD_DIR))/herald npm test

# The unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer (CI runs it after `test`),
# in their own build directory; any finding (leaks included) fails the run. Debug with line tables
# only (-g1): reports still give file:line, and it builds a fifth faster than with -g.
sanitize: test-deps
	@cmake -S . -B $(SANITIZE_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 \
	  -DHERALD_SANITIZE=ON -DHERALD_BUILD_BENCH=OFF >/dev/null
	@cmake --build $(SANITIZE_DIR) --target herald_tests -j $(JOBS)
	cd $(SANITIZE_DIR) && \
	  ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1 \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS)

# Every benchmark beside its reference (bench/README.md), bounded, in under 15 minutes: prints one
# table and writes bench/results/latest.md and latest.json. One part alone:
#   make bench BENCH_ONLY=providers      (footprint, ingest, providers, growth, fanout)
BENCH_ONLY ?= footprint,ingest,providers,growth,fanout
bench-deps:
	@scripts/install-deps.sh --bench

bench: bench-deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DHERALD_BUILD_BENCH=ON >/dev/null
	@cmake --build $(BUILD_DIR) --target herald herald_bench_sink herald_bench_load herald_bench_h2mock herald_bench_crypto -j $(JOBS)
	BUILD_DIR=$(abspath $(BUILD_DIR)) node bench/run_all.mjs --only $(BENCH_ONLY)

clean:
	rm -rf $(BUILD_DIR) $(SANITIZE_DIR)
