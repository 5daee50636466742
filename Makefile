# cpscale: the two commands a newcomer runs are `make demo` and `make test`.
# Both install the Debian packages they need first (.ci/install-deps).

BUILD ?= build
BUILD_TYPE ?= RelWithDebInfo
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX ?= /usr/local
DEMO_DIR ?= $(BUILD)/demo
# `make image`: the container tool and the image's name.
CONTAINER_TOOL ?= docker
VERSION := $(shell sed -n 's/^project.cpscale VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
IMAGE ?= cpscale:$(VERSION)

.PHONY: all build deps test-deps demo test test-shared asan valgrind install manifests image clean

all: build

build:
	@command -v cmake >/dev/null 2>&1 || .ci/install-deps build
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

deps:
	.ci/install-deps build

test-deps:
	.ci/install-deps test

# The main job: a synthetic week of traffic with bursts, replayed through
# cpscale, the Kubernetes HPA and the oracle; a table and an SVG plot.
demo: deps build
	@mkdir -p $(DEMO_DIR)
	$(BUILD)/cpscale gen-trace --days 7 --seed 7 --output $(DEMO_DIR)/week.csv
	$(BUILD)/cpscale sim $(DEMO_DIR)/week.csv --plot $(DEMO_DIR)/week.svg
	@echo
	@echo "The plot is $(DEMO_DIR)/week.svg (open it in a browser)."

test: test-deps build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The suites that replay the real traces in ../shared/traces.
test-shared: build
	tests/shared/run $(BUILD)/cpscale

# The suite under AddressSanitizer and UndefinedBehaviorSanitizer. The long
# controller suite is left to `make valgrind`, which runs the same binary
# under memcheck instead (ASan and valgrind cannot be combined). One suite
# more than the cores at a time: test_backfill spends its 2-3 minutes
# mostly waiting for a clock minute (about 260 s for the suites at -j 2,
# 155-180 s at -j 3 on two cores).
asan:
	cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DCPS_SANITIZE=ON -DCPS_WERROR=ON >/dev/null
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ctest --output-on-failure -j $$(( $(JOBS) + 1 )) -E 'integration/(test_controller|soak)'

# The controller's integration suite with every controller under valgrind
# (memcheck; any error or definite/indirect leak fails the run).
valgrind: test-deps build
	CPS_VALGRIND=1 python3 tests/integration/test_controller.py --cpscale $(BUILD)/cpscale

install: build
	install -D -m 0755 $(BUILD)/cpscale $(DESTDIR)$(PREFIX)/bin/cpscale

# Refresh the ConfigMap's copy of config/config.yaml (kustomize reads no file
# outside manifests/base, not even through a symlink), then render the
# example overlay to $(BUILD)/manifests.yaml. tests/golden/manifests.sh fails
# while the copy differs from config/config.yaml.
manifests:
	cp config/config.yaml manifests/base/config.yaml
	@mkdir -p $(BUILD)
	kubectl kustomize manifests/ > $(BUILD)/manifests.yaml
	@echo "rendered $(BUILD)/manifests.yaml"

# The container image (Dockerfile at the root). CONTAINER_TOOL=podman works too.
image:
	$(CONTAINER_TOOL) build -t $(IMAGE) .

clean:
	rm -rf $(BUILD) $(BUILD)-asan
