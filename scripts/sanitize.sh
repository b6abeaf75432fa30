#!/usr/bin/env bash
# Runs the thread-heavy reactor tests under AddressSanitizer and ThreadSanitizer (nightly
# Rust; TSan rebuilds std with -Zbuild-std and needs the rust-src component). Not part of CI:
# CI must not depend on nightly. The loom model checks (stable) are in .ci/run.
#
#   scripts/sanitize.sh          # both
#   scripts/sanitize.sh asan     # one
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=x86_64-unknown-linux-gnu
TESTS=(--test shared_base --test shared_deadlock --test handle --test finalize
       --test reentrancy --test base_and_threads)
which=${1:-all}
if [ "$which" = all ] || [ "$which" = asan ]; then
  RUSTFLAGS="-Zsanitizer=address" ASAN_OPTIONS=detect_leaks=0 \
    cargo +nightly test -p evrs --target $TARGET --target-dir target/asan "${TESTS[@]}"
fi
if [ "$which" = all ] || [ "$which" = tsan ]; then
  RUSTFLAGS="-Zsanitizer=thread" \
    cargo +nightly test -Zbuild-std --target $TARGET --target-dir target/tsan -p evrs \
    "${TESTS[@]}"
fi
