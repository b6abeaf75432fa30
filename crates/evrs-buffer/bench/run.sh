#!/bin/sh
# Benchmark evrs-buffer against libevent's evbuffer (Debian libevent-dev).
# Builds both sides, runs each RUNS times (each run already keeps the best of
# 5 repeats per case), and prints a markdown table of the best ns/op.
# Usage: crates/evrs-buffer/bench/run.sh [RUNS]   (not part of the tests)
set -eu
RUNS=${1:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${TMPDIR:-/tmp}/evrs-buffer-bench.$$
mkdir -p "$OUT"
trap 'rm -rf "$OUT"' EXIT

cc -O2 -Wall -o "$OUT/evbuffer_c" "$HERE/evbuffer_bench.c" -levent_core
(cd "$HERE/.." && cargo bench -q -p evrs-buffer --bench evbuffer --no-run 2>/dev/null) ||
    (cd "$HERE/.." && cargo bench -p evrs-buffer --bench evbuffer --no-run)
RUST_BIN=$(cd "$HERE/.." && cargo bench -q -p evrs-buffer --bench evbuffer --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)

i=0
while [ "$i" -lt "$RUNS" ]; do
    "$OUT/evbuffer_c" >>"$OUT/c.txt"
    "$RUST_BIN" >>"$OUT/rust.txt"
    i=$((i + 1))
done

best() { awk '{ if (!($1 in m) || $2 < m[$1]) m[$1] = $2; if (!($1 in o)) o[$1] = n++ }
    END { for (k in m) print o[k], k, m[k] }' "$1" | sort -n | cut -d' ' -f2-; }
best "$OUT/c.txt" >"$OUT/c.best"
best "$OUT/rust.txt" >"$OUT/rust.best"

echo "| case | libevent ns/op | evrs ns/op | libevent/evrs |"
echo "|---|---:|---:|---:|"
awk 'NR == FNR { r[$1] = $2; next }
    ($1 in r) { printf "| %s | %.1f | %.1f | %.2fx |\n", $1, $2, r[$1], (r[$1] > 0 ? $2 / r[$1] : 0) }' \
    "$OUT/rust.best" "$OUT/c.best"
