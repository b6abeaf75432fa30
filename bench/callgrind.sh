#!/usr/bin/env bash
# Deterministic companion to the wall-clock harness: user-space instructions per operation,
# counted by valgrind's callgrind (unaffected by machine load). Each figure is the difference
# between two runs that differ only in repetitions (or timer count), divided by the extra
# operations, so process start-up and setup cancel out.
#
#   bench/callgrind.sh            # all peers, prints a markdown table
#
# Needs valgrind and a release build of the harness (built here).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p evrs-bench
T=${CARGO_TARGET_DIR:-target}
B=$T/release/evrs-bench
OUT=$(ls -d $T/release/build/evrs-bench-*/out 2>/dev/null | head -1)

count() { # prints total instructions of one run
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null |
    awk '/Collected/ {s += $4} END {print s + 0}'
}
run() { # peer bench args...
  local peer=$1; shift
  case $peer in
    libevent|libev) count "$OUT/${peer}_bench" "$@" ;;
    *) count "$B" child "$peer" "$@" ;;
  esac
}

peers=${PEERS:-"evrs raw-epoll libevent libev mio tokio"}
echo "| peer | pipechain n=100 | pipechain n=1000 | timer add+del | timer fire (incl. create) |"
echo "|---|---:|---:|---:|---:|"
for p in $peers; do
  row="| $p"
  for n in 100 1000; do
    a=$(run "$p" pipechain "$n" 100 1000 5 0 0)
    b=$(run "$p" pipechain "$n" 100 1000 15 0 0)
    row="$row | $(( (b - a) / (10 * 1100) ))"
  done
  if [ "$p" = mio ]; then
    row="$row | n/a | n/a |"
  else
    a=$(run "$p" timers_adddel 100000 0 0 1 0 0)
    b=$(run "$p" timers_adddel 100000 0 0 3 0 0)
    row="$row | $(( (b - a) / (2 * 100000) ))"
    a=$(run "$p" timers_fire 20000 0 0 1 0 0)
    b=$(run "$p" timers_fire 60000 0 0 1 0 0)
    row="$row | $(( (b - a) / 40000 )) |"
  fi
  echo "$row"
done
