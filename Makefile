# What a newcomer types. Each target installs what it needs first (idempotent).
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)

.PHONY: all deps test-deps configure build run test unit e2e bench clean

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

clean:
	rm -rf $(BUILD_DIR)
