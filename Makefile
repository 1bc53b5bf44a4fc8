# What a newcomer types. Each target installs what it needs first (idempotent).
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)

.PHONY: all deps test-deps bench-deps configure build run test unit e2e bench clean

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

# The end-to-end benchmark (bench/README.md): builds what it runs, appends to bench/results.
bench-deps:
	@scripts/install-deps.sh --bench

bench: bench-deps configure
	@cmake --build $(BUILD_DIR) --target herald herald_bench_sink herald_bench_load -j $(JOBS)
	BUILD_DIR=$(abspath $(BUILD_DIR)) bench/e2e/run.sh

clean:
	rm -rf $(BUILD_DIR)
