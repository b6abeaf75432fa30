#!/usr/bin/env bash
# capi_ab.sh [ROUNDS]
#
# Issue 16's performance check: the libevent-API C program of the bench
# (c/libevent_bench.c), built once against Debian's libevent by bench/build.rs, run
# against Debian's libevent and against evrs's C ABI (LD_LIBRARY_PATH), alternating
# which goes first each round. Prints, per benchmark, the median of each library's
# samples over all rounds and the ratio evrs/libevent (below 1.00: evrs is faster).
#   pipechain n=1000 (run_ns: wall time of a 1100-callback run), timers_adddel
#   (op_ns per add+del), timers_fire 100k (cpu_ns of create+add+fire).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
T=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p evrs-bench -p evrs-capi
OUT=$(ls -d "$T"/release/build/evrs-bench-*/out | head -1)
LIBS=$T/release/evrs-capi-libs
crates/evrs-capi/build-libs.sh "$T/release" "$LIBS" >/dev/null
B=$OUT/libevent_bench
[ -x "$B" ] || { echo "capi_ab.sh: $B missing (libevent-dev not installed?)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() { # lib bench metric args...
  local lib=$1 bench=$2 metric=$3; shift 3
  if [ "$lib" = evrs ]; then
    LD_LIBRARY_PATH=$LIBS "$B" "$bench" "$@"
  else
    env -u LD_LIBRARY_PATH "$B" "$bench" "$@"
  fi | awk -v m="$metric" '$1 == "SAMPLE" && $5 == m { print $6 }' >> "$tmp/$bench.$lib"
}
for r in $(seq "$rounds"); do
  order="libevent evrs"
  [ $((r % 2)) = 0 ] && order="evrs libevent"
  for lib in $order; do
    run "$lib" pipechain run_ns 1000 100 1000 100 10 0
    run "$lib" timers_adddel op_ns 100000 0 0 3 1 0
    run "$lib" timers_fire cpu_ns 100000 0 0 3 1 0
  done
  echo "round $r of $rounds done" >&2
done
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "| benchmark | libevent | evrs | evrs / libevent |"
echo "|---|---:|---:|---:|"
for b in pipechain timers_adddel timers_fire; do
  l=$(median "$tmp/$b.libevent") e=$(median "$tmp/$b.evrs")
  awk -v b="$b" -v l="$l" -v e="$e" 'BEGIN { printf "| %s | %.0f | %.0f | %.2fx |\n", b, l, e, e / l }'
done
