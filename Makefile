# The two commands a newcomer needs:
#   make run   — install what the build needs, build, and run the main job on the bundled data
#   make test  — install what the build needs, build, and run every test
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

.PHONY: all setup build run test bench format tidy clean

all: build

setup:
	@bash scripts/setup.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: setup $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

run: build
	@bash scripts/run_main.sh $(BUILD)

test: setup
	out=$$(bash scripts/build_llama.sh) && \
	  cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS) -DBATON_LLAMA_PREFIX="$$(printf '%s\n' "$$out" | tail -n 1)"
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: build
	$(BUILD)/bench/baton_bench

format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

tidy: $(BUILD)/build.ninja
	git ls-files 'src/*.cc' | xargs clang-tidy -p $(BUILD) --quiet

clean:
	rm -rf $(BUILD)
