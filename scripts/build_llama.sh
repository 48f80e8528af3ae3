#!/usr/bin/env bash
# Fetches llama.cpp's source from the npm package node-llama-cpp (its llama/gitRelease.bundle is a git bundle of a
# llama.cpp release), builds the libraries and llama-server, and installs them into a cache outside the repository.
# Nothing of llama.cpp is committed. Re-running is cheap: a finished build is reused.
#
#   scripts/build_llama.sh            # prints the install prefix on its last line
#   BATON_CACHE=/some/dir scripts/build_llama.sh
set -euo pipefail

NODE_LLAMA_CPP_VERSION=3.22.1
CACHE=${BATON_CACHE:-$HOME/.cache/baton}
SRC=$CACHE/llama.cpp-src-$NODE_LLAMA_CPP_VERSION
BUILD=$CACHE/llama.cpp-build-$NODE_LLAMA_CPP_VERSION
PREFIX=$CACHE/llama.cpp-$NODE_LLAMA_CPP_VERSION
STAMP=$PREFIX/.baton-complete
JOBS=${JOBS:-$(nproc)}

if [ -f "$STAMP" ]; then
  echo "llama.cpp: cached build in $PREFIX" >&2
  echo "$PREFIX"
  exit 0
fi

command -v npm >/dev/null || { echo "build_llama: npm is required (apt-get install npm)" >&2; exit 1; }
mkdir -p "$CACHE"
if [ ! -d "$SRC/.git" ]; then
  tmp=$(mktemp -d "$CACHE/fetch.XXXXXX")
  echo "llama.cpp: fetching node-llama-cpp@$NODE_LLAMA_CPP_VERSION from the npm registry" >&2
  (cd "$tmp" && npm pack --silent "node-llama-cpp@$NODE_LLAMA_CPP_VERSION" >/dev/null && tar xzf ./*.tgz)
  rm -rf "$SRC.partial"
  git clone --quiet "$tmp/package/llama/gitRelease.bundle" "$SRC.partial"
  mv "$SRC.partial" "$SRC"
  rm -rf "$tmp"
fi

echo "llama.cpp: building libraries and llama-server with $JOBS jobs (about 8 minutes on 2 cores)" >&2
cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$PREFIX" \
  -DBUILD_SHARED_LIBS=ON -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DGGML_NATIVE=OFF \
  -DCMAKE_BUILD_RPATH='$ORIGIN:$ORIGIN/../lib' >&2
cmake --build "$BUILD" -j "$JOBS" --target llama ggml llama-server >&2

# Assemble the prefix by hand: `cmake --install` wants every tool built. Binaries find the libraries through their
# relative rpath ($ORIGIN/../lib), so the prefix can move.
rm -rf "$PREFIX.partial"
mkdir -p "$PREFIX.partial"/{bin,lib,include,share/baton}
cp -a "$BUILD"/bin/*.so* "$PREFIX.partial/lib/"
cp -a "$BUILD/bin/llama-server" "$PREFIX.partial/bin/"
cp -a "$SRC"/include/*.h "$SRC"/ggml/include/*.h "$PREFIX.partial/include/"
cp -a "$SRC/models/ggml-vocab-llama-spm.gguf" "$PREFIX.partial/share/baton/"
touch "$PREFIX.partial/.baton-complete"
rm -rf "$PREFIX"
mv "$PREFIX.partial" "$PREFIX"
echo "$PREFIX"
