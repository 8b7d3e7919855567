# Front door: `make demo` and `make test` work on a fresh Debian 12 machine (as root).
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

.PHONY: all deps build demo test sanitize fuzz bench clean format fresh-check

# Compiler cache inside the clone (build/.ccache, so `make clean` clears it). The fresh-machine
# check (scripts/fresh-check.sh) lends it to the fresh root, which then compiles nothing twice.
# CCACHE_BASEDIR keeps cache entries independent of where the clone lives.
CCACHE_DIR ?= $(CURDIR)/build/.ccache
export CCACHE_DIR
export CCACHE_BASEDIR := $(CURDIR)

all: build

deps:
	@sh scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS) -DCMAKE_CXX_COMPILER_LAUNCHER=ccache > /dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# A short demo: the stacked autoencoder for 2 epochs on Fashion-MNIST; writes
# runs/demo/reconstructions.png (originals over reconstructions) and metrics.jsonl.
demo: build
	$(BUILD)/bin/loom run pipelines/stacked_ae.yaml --epochs 2 --out runs/demo --overwrite
	@echo "reconstruction grid: runs/demo/reconstructions.png"

# The whole suite: unit and gradient tests, plugin loading, error messages, and every
# pipeline in a shortened form.
test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

# AddressSanitizer + UndefinedBehaviorSanitizer build in its own folder, optimised lightly
# (-O1 -g, as sanitizer builds usually are) so the pipelines' short runs finish in minutes.
sanitize: deps
	@cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Sanitize -DLOOM_SANITIZE=ON \
	  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache > /dev/null
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions=$(CURDIR)/scripts/ubsan.supp \
	  ctest --output-on-failure -j $(JOBS) --timeout 3600

# libFuzzer harnesses (fuzz/: one per reader, and pipeline text -> validate), built with clang,
# ASan and UBSan in build-fuzz/, each run for FUZZ_SECONDS (CI: 30). scripts/fuzz.sh says more.
FUZZ_SECONDS ?= 60
FUZZ_SEED ?=
fuzz:
	@sh scripts/install-deps.sh fuzz
	@cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Sanitize \
	  -DLOOM_FUZZ=ON -DCMAKE_CXX_COMPILER_LAUNCHER=ccache > /dev/null
	@cmake --build build-fuzz -j $(JOBS)
	@FUZZ_SEED=$(FUZZ_SEED) bash scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

bench: build
	$(BUILD)/bin/loom bench pipelines/stacked_ae.yaml

# The two commands above on a fresh Debian 12 root, from the committed HEAD (needs root).
fresh-check:
	@bash scripts/fresh-check.sh

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf $(BUILD) build-asan build-fuzz
