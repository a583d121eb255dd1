# Convenience targets over CMake, for those who expect make.
#   make                 configure and build the optimized build in build/
#   make test            run every test (unit and slow) in build/
#   make check           the whole suite: make test, then the unit tests built
#                        with AddressSanitizer and UndefinedBehaviorSanitizer
#   make bench           run the benchmarks beside PyTorch (bench/run.sh)
#   make install         install under PREFIX (default /usr/local)
#   make clean           remove the build folders
PREFIX ?= /usr/local
JOBS ?= 2

.PHONY: all build test check bench install clean

all: build

build:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --build build -j$(JOBS)

test: build
	cd build && ctest --output-on-failure -j$(JOBS)

check:
	scripts/check.sh

bench: build
	bench/run.sh build

install: build
	cmake --install build --prefix $(PREFIX)

clean:
	rm -rf build build-sanitize
