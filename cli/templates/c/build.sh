#!/bin/sh
# Builds policy.wasm with clang and wasm-ld (Debian: apt-get install clang lld).
set -eu
cd "$(dirname "$0")"
mkdir -p build
clang --target=wasm32 -O2 -nostdlib -ffreestanding -Wall -Wextra -I . \
  -Wl,--no-entry \
  -Wl,--export=leadtime_abi_version -Wl,--export=leadtime_alloc \
  -Wl,--export=leadtime_decide -Wl,--export=leadtime_init \
  -o build/policy.wasm policy.c leadtime.c
