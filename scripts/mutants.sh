#!/usr/bin/env bash
# CI smoke step for mutation testing (docs/MUTANTS.md): runs cargo-mutants on a small core
# file with a pinned test subset and fails if any mutant survives. Scoped to stay within a
# few minutes on two cores; the wider runs are listed, with their commands, in MUTANTS.md.
#
#   scripts/mutants.sh                 # the smoke set
#   scripts/mutants.sh --list          # extra arguments go to cargo-mutants
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo mutants --version >/dev/null 2>&1; then
  cargo install cargo-mutants --locked
fi

# wake_queue.rs: the cross-thread wake-up protocol, killed by its own unit tests (lib only,
# so each mutant rebuilds and runs one test binary). The loom models are not built without
# `--cfg loom`, so mutating them proves nothing: excluded.
# CI sets EVRS_MUTANTS_IN_PLACE=1: mutate its disposable clone in place, so the builds reuse
# the target dir of the test step instead of building a copy of the tree from scratch.
# (In place there is one tree, so one job; otherwise one job too: two cores.)
mode=(-j 1)
if [ "${EVRS_MUTANTS_IN_PLACE:-0}" = 1 ]; then
  mode=(--in-place)
fi
status=0
cargo mutants -p evrs "${mode[@]}" --timeout 60 --no-shuffle --cargo-arg=--lib \
  --file crates/evrs/src/wake_queue.rs --exclude-re 'loom_tests' \
  -o "${CARGO_TARGET_DIR:-target}" "$@" \
  -- -- --test-threads=2 || status=$?

# cargo-mutants exits 0 when every mutant was caught, 3 when the only non-caught ones timed
# out (a hang is a detection too), 2 when some survived, other codes on errors.
case $status in
  0 | 3) echo "mutants: none survived" ;;
  2) echo "mutants: survivors, see ${CARGO_TARGET_DIR:-target}/mutants.out/missed.txt" >&2; exit 1 ;;
  *) echo "mutants: cargo-mutants failed (exit $status)" >&2; exit "$status" ;;
esac
