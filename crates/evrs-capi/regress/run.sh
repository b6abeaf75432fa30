#!/usr/bin/env bash
# run.sh [--libs DIR | --debian] [--require N] [--timeout SEC] [--jobs N] [--summary FILE]
#        [--no-debug-locks] [--probe] [GROUP...]
#
# Runs libevent 2.1.12's own regress suite (test/regress from Debian's source package
# `libevent`) against evrs's drop-in libraries, one process per test, and prints a
# scoreboard. See README.md beside this script.
#
#   --libs DIR     run against the libevent*-2.1.so.7 in DIR (made by ../build-libs.sh);
#                  default: cargo build -p evrs-capi, then build-libs.sh into the cache
#   --debian       run against the system's libevent (the baseline; no LD_LIBRARY_PATH)
#   --require N    exit 1 if fewer than N tests are ok (PASS, or skipped by the test itself)
#   --timeout SEC  per-test watchdog (default 20)
#   --jobs N       tests run at once (default 1; the suite has timing-sensitive tests)
#   --summary FILE where the summary goes (default <cache>/<label>/summary.txt)
#   --no-debug-locks  set EVENT_NO_DEBUG_LOCKS=1, the suite's own switch that keeps its
#                  main() from calling evthread_enable_lock_debugging() before every test
#                  (diagnostic: shows what blocks the tests beyond that one function)
#   --probe        diagnostic, not a score: preloads stand-ins for every libevent function
#                  regress calls that the libraries lack; those the suite's main() calls
#                  around every test (evthread_enable_lock_debugging, evutil_weakrand_seed_,
#                  libevent_global_shutdown) do nothing, evutil_snprintf/evutil_vsnprintf
#                  (tinytest's own snprintf) use libc's, the others end the test as a
#                  MISSING-SYMBOL. Shows which missing function each test's own code hits.
#   GROUP...       default: main evbuffer bufferevent signal et heap finalize util listener thread
#
# The suite's source is fetched once with apt-get source through a private apt configuration
# (the machine's apt sources are not touched) and test/regress is compiled directly with gcc
# against the installed libevent-dev headers and libraries; both are cached in
# ${EVRS_REGRESS_DIR:-${CARGO_TARGET_DIR:-<repo>/target}/libevent-regress} and reused.
#
# Exit status: 0 whatever the tests do (it is a scoreboard); 1 if --require is not met;
# 2 if the runner itself could not run (fetch, build, bad arguments).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
all_groups="main evbuffer bufferevent signal et heap finalize util listener thread"

die() { echo "run.sh: $*" >&2; exit 2; }
note() { echo "== $*"; }

libs="" debian=0 require="" timeout_s=20 jobs=1 summary="" nodebuglocks=0 probe=0 groups=()
while [ $# -gt 0 ]; do
  case $1 in
    --libs) [ $# -ge 2 ] || die "--libs needs a directory"; libs=$2; shift 2 ;;
    --debian) debian=1; shift ;;
    --no-debug-locks) nodebuglocks=1; shift ;;
    --probe) probe=1; shift ;;
    --require) [ $# -ge 2 ] || die "--require needs a number"; require=$2; shift 2 ;;
    --timeout) [ $# -ge 2 ] || die "--timeout needs seconds"; timeout_s=$2; shift 2 ;;
    --jobs | -j) [ $# -ge 2 ] || die "--jobs needs a number"; jobs=$2; shift 2 ;;
    --summary) [ $# -ge 2 ] || die "--summary needs a file"; summary=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) groups+=("$1"); shift ;;
  esac
done
[ ${#groups[@]} -gt 0 ] || read -r -a groups <<< "$all_groups"
for g in "${groups[@]}"; do
  case " $all_groups " in *" $g "*) ;; *) die "unknown group $g (known: $all_groups)" ;; esac
done
[ "$debian" = 0 ] || [ -z "$libs" ] || die "--debian and --libs exclude each other"
[ "$debian" = 0 ] || [ "$probe" = 0 ] || die "--probe is for drop-in libraries, not --debian"
case $require in '' | *[!0-9]*) [ -z "$require" ] || die "--require needs a number" ;; esac
case $timeout_s in '' | *[!0-9]* | 0) die "--timeout needs a positive number of seconds" ;; esac
case $jobs in '' | *[!0-9]* | 0) die "--jobs needs a positive number" ;; esac

target_dir=${CARGO_TARGET_DIR:-$repo/target}
cache=${EVRS_REGRESS_DIR:-$target_dir/libevent-regress}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

for tool in gcc nm timeout apt-get; do
  command -v "$tool" >/dev/null 2>&1 || die "needs $tool"
done
[ -f /usr/include/event2/event.h ] || die "needs libevent-dev (the installed 2.1 headers and libraries)"

# ---------------------------------------------------------------- fetch the suite's source
# The source package matching the installed libevent-dev, from the same Debian release.
fetch_source() {
  local ver codename mirror secmirror keyring signed apt dsc
  ver=$(dpkg-query -W -f='${source:Version}' libevent-dev 2>/dev/null) || die "libevent-dev is not installed"
  if [ -f "$cache/src/.evrs-fetched" ] && [ "$(cat "$cache/src/.evrs-fetched")" = "$ver" ]; then
    return
  fi
  # shellcheck source=/dev/null
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ -n "$codename" ] || die "cannot tell the Debian release (VERSION_CODENAME in /etc/os-release)"
  mirror=${EVRS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
  secmirror=${EVRS_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  signed=""
  [ -f "$keyring" ] && signed="[signed-by=$keyring] "
  rm -rf "$cache/apt" "$cache/dl" "$cache/src"
  mkdir -p "$cache/apt/lists/partial" "$cache/apt/cache/archives/partial" "$cache/apt/parts" "$cache/dl"
  {
    echo "deb-src $signed$mirror $codename main"
    echo "deb-src $signed$mirror $codename-updates main"
    echo "deb-src $signed$secmirror $codename-security main"
  } > "$cache/apt/sources.list"
  # Everything apt reads or writes here is private: its source list, lists and cache.
  apt=(apt-get -q -o "Dir::Etc::SourceList=$cache/apt/sources.list"
    -o "Dir::Etc::SourceParts=$cache/apt/parts" -o "Dir::State::Lists=$cache/apt/lists"
    -o "Dir::Cache=$cache/apt/cache" -o "APT::Sandbox::User=$(id -un)")
  note "fetching libevent $ver source ($codename deb-src, private apt configuration)"
  "${apt[@]}" -qq update || die "apt-get update (private deb-src list) failed"
  (cd "$cache/dl" && "${apt[@]}" -qq source --download-only "libevent=$ver") \
    || { echo "run.sh: libevent=$ver not in the deb-src lists; taking the newest" >&2
         (cd "$cache/dl" && "${apt[@]}" -qq source --download-only libevent); } \
    || die "apt-get source libevent failed"
  local dscs=("$cache"/dl/libevent_*.dsc)
  dsc=${dscs[0]}
  [ -f "$dsc" ] || die "no libevent .dsc downloaded"
  if command -v dpkg-source >/dev/null 2>&1; then
    # (apt checked the files against the signed Sources index; dpkg-source's own signature
    # check wants debian-keyring and only warns without it, so its chatter goes to a log.)
    dpkg-source -q -x "$dsc" "$cache/src" > "$cache/dl/dpkg-source.log" 2>&1 \
      || { cat "$cache/dl/dpkg-source.log" >&2; die "dpkg-source -x failed"; }
  else
    # No dpkg-dev: unpack the upstream tarball and apply Debian's patches (some touch test/).
    mkdir -p "$cache/src"
    tar -xzf "$(ls "$cache"/dl/libevent_*.orig.tar.gz)" -C "$cache/src" --strip-components=1 || die "unpacking failed"
    tar -xJf "$(ls "$cache"/dl/libevent_*.debian.tar.xz)" -C "$cache/src" || die "unpacking debian/ failed"
    if [ -f "$cache/src/debian/patches/series" ]; then
      local patches p apply
      if command -v patch >/dev/null 2>&1; then apply="patch -s -p1 -i"
      elif command -v git >/dev/null 2>&1; then apply="git apply -p1"
      else die "needs dpkg-source, patch or git to apply Debian's patches"; fi
      patches=$(grep -v '^[[:space:]]*\(#\|$\)' "$cache/src/debian/patches/series" | awk '{ print $1 }')
      for p in $patches; do
        # shellcheck disable=SC2086 # apply is a command and its options
        (cd "$cache/src" && $apply "debian/patches/$p") || die "applying $p failed"
      done
    fi
  fi
  [ -f "$cache/src/test/regress_main.c" ] || die "the unpacked source has no test/regress_main.c"
  echo "$ver" > "$cache/src/.evrs-fetched"
}

# ---------------------------------------------------------------- build test/regress
# regress's own sources for the groups run here, compiled against the installed event2/
# headers (so event-config.h is Debian's) plus the source tree's internal headers, linked
# against the installed libevent and libevent_pthreads. Left out: http, dns, rpc (other
# groups) and ssl, zlib (disabled): their test tables are empty stubs. Lazy binding, so a
# function our libraries lack fails only the tests that call it ("symbol lookup error").
regress_sources="regress regress_buffer regress_bufferevent regress_et regress_finalize
  regress_listener regress_main regress_minheap regress_testutils regress_util regress_thread tinytest"
cflags="-O1 -g -w -pthread -DTINYTEST_LOCAL -D_GNU_SOURCE"
# Bumped when the build-time transformation of the sources (below) changes.
transform="validate-skip-2"

# regress_buffer.c's static evbuffer_validate_() walks libevent's PRIVATE struct evbuffer
# chain list (evbuffer-internal.h) after almost every step of the evbuffer tests; that layout
# is not ABI. The copy compiled here gets a body that returns "valid" without reading any
# field, so the tests run every public assertion and skip only the private-structure walk.
# (evbuffer_get_waste, the other private walk, is left as it is: its only callers, the
# expand and iterative tests, assert on its result and stay in excluded.txt.) The source
# tree itself is not touched; the transformed copy lives in the build directory.
transform_buffer_source() {
  local in=$1 out=$2
  # Line for line: the walk's lines become blank and "#line 1" names the original file, so
  # a FAIL message gives the original's file and line.
  awk -v file="$in" '
    NR == 1 { printf "#line 1 \"%s\"\n", file }
    /^evbuffer_validate_\(struct evbuffer \*buf\)$/ { print; skipping = 1; next }
    skipping == 1 && /^{$/ {
      print "{ (void)buf; return 1; /* evrs regress/run.sh: the private-structure walk is skipped */"
      skipping = 2; next
    }
    skipping == 2 && /^}$/ { print; skipping = 0; done = 1; next }
    skipping { print ""; next }
    { print }
    END { if (!done) exit 3 }' "$in" > "$out" \
    || die "could not find evbuffer_validate_() in $in to skip its private-structure walk"
}

build_regress() {
  local b=$cache/build stamp
  stamp="$(cat "$cache/src/.evrs-fetched") | $cflags | $regress_sources | $transform | $(gcc -dumpfullversion)"
  if [ -x "$b/regress" ] && [ -f "$b/tests.txt" ] && [ "$(cat "$b/.evrs-built" 2>/dev/null)" = "$stamp" ]; then
    return
  fi
  note "building test/regress"
  rm -rf "$b"
  mkdir -p "$b"
  # evconfig-private.h is made by libevent's configure; on glibc it only asks for _GNU_SOURCE.
  printf '#ifndef _GNU_SOURCE\n#define _GNU_SOURCE 1\n#endif\n' > "$b/evconfig-private.h"
  cat > "$b/evrs_stub_groups.c" <<'EOF'
/* Groups not built by evrs's runner: their test tables are empty. */
#include <stddef.h>
#include "tinytest.h"
struct testcase_t http_testcases[] = { END_OF_TESTCASES };
struct testcase_t dns_testcases[] = { END_OF_TESTCASES };
struct testcase_t rpc_testcases[] = { END_OF_TESTCASES };
struct testcase_t ssl_testcases[] = { END_OF_TESTCASES };
EOF
  local s=$cache/src objs=() f c running=0 failed=0
  transform_buffer_source "$s/test/regress_buffer.c" "$b/regress_buffer.c"
  for f in $regress_sources; do objs+=("$b/$f.o"); done
  # Two compilers at a time (the objects are checked below, so a failure is not lost).
  for f in $regress_sources; do
    c=$s/test/$f.c
    [ ! -f "$b/$f.c" ] || c=$b/$f.c # the transformed copy
    # shellcheck disable=SC2086 # cflags is a list of words
    gcc $cflags -I"$b" -I"$s/test" -I"$s" -I"$s/compat" -c "$c" -o "$b/$f.o" &
    running=$((running + 1))
    if [ "$running" -ge 2 ]; then wait -n || failed=1; running=$((running - 1)); fi
  done
  wait
  # shellcheck disable=SC2086
  gcc $cflags -I"$s/test" -c "$b/evrs_stub_groups.c" -o "$b/evrs_stub_groups.o" || failed=1
  for f in "${objs[@]}"; do [ -s "$f" ] || failed=1; done
  [ "$failed" = 0 ] || die "compiling regress failed"
  # shellcheck disable=SC2086
  gcc $cflags -o "$b/regress" "${objs[@]}" "$b/evrs_stub_groups.o" -Wl,-z,lazy \
    -levent -levent_pthreads || die "linking regress failed"
  # The test list (those run by default: not DISABLED, not "Off by default").
  "$b/regress" --list-tests | awk '/^    [a-z_]+\/[^ ]+$/ { print $1 }' > "$b/tests.txt"
  [ -s "$b/tests.txt" ] || die "regress --list-tests listed nothing"
  echo "$stamp" > "$b/.evrs-built"
}

# ---------------------------------------------------------------- the libraries under test
prepare_libs() {
  if [ "$debian" = 1 ]; then label=debian; libs=""; return; fi
  if [ -z "$libs" ]; then
    note "building evrs's libraries (cargo build -p evrs-capi; build-libs.sh)"
    (cd "$repo" && cargo build -q -p evrs-capi) || die "cargo build -p evrs-capi failed"
    libs=$cache/evrs-libs
    "$repo/crates/evrs-capi/build-libs.sh" "$target_dir/debug" "$libs" || die "build-libs.sh failed"
  fi
  [ -d "$libs" ] || die "--libs $libs: no such directory"
  libs=$(cd "$libs" && pwd)
  local l
  for l in libevent_core-2.1.so.7 libevent-2.1.so.7 libevent_pthreads-2.1.so.7; do
    [ -e "$libs/$l" ] || die "$libs has no $l"
  done
  label=evrs
}

# regress reads a few of libevent's private globals through its internal headers
# (evthread_lock_fns_ and evthread_cond_fns_ in evthread-internal.h, event_debug_logging_mask_
# in log-internal.h, event_global_current_base_ in regress.c). The executable holds copies of
# them (copy relocations), which the loader binds when it starts, so a library without them
# fails every test at load time. When the libraries under test lack one, a preloaded shim
# supplies zeroed storage of the same size; the tests that read them are in excluded.txt.
make_privdata_shim() {
  shim=""
  [ "$debian" = 0 ] || return 0
  local have want missing=() name size
  have=$(nm -D --defined-only "$libs"/*.so* 2>/dev/null | awk '{ print $3 }' | sort -u)
  want=$(nm -D --defined-only -S "$cache/build/regress" | awk '$3 ~ /^[BbDd]$/ && $4 !~ /@/ { print $4, $2 }')
  while read -r name size; do
    [ -n "$name" ] || continue
    grep -qx "$name" <<< "$have" || missing+=("$name $size")
  done <<< "$want"
  local fns=""
  if [ "$probe" = 1 ]; then
    fns=$(nm -D --undefined-only "$cache/build/regress" | awk '$2 !~ /@/ { print $2 }' \
      | grep -vxFf <(printf '%s\n' "$have") | grep -xFf <(nm -D --defined-only \
        /usr/lib/*/libevent-2.1.so.7 /usr/lib/*/libevent_pthreads-2.1.so.7 | awk '{ print $3 }') || true)
  fi
  [ ${#missing[@]} -gt 0 ] || [ -n "$fns" ] || return 0
  mkdir -p "$run_dir"
  {
    echo "/* zeroed stand-ins for libevent private globals the libraries under test lack */"
    for m in "${missing[@]}"; do
      read -r name size <<< "$m"
      echo "__attribute__((aligned(16))) char ${name}[0x$size];"
    done
    [ -z "$fns" ] || printf '#include <unistd.h>\n#include <stdio.h>\n#include <stdarg.h>\n' 
    for f in $fns; do
      case $f in
        evthread_enable_lock_debugging | evutil_weakrand_seed_ | libevent_global_shutdown)
          echo "void $f(void) {}" ;;
        evutil_vsnprintf)
          echo "int $f(char *b, size_t n, const char *f, va_list a) { return vsnprintf(b, n, f, a); }" ;;
        evutil_snprintf)
          echo "int $f(char *b, size_t n, const char *f, ...) { va_list a; int r; va_start(a, f); r = vsnprintf(b, n, f, a); va_end(a); return r; }" ;;
        *) printf 'void %s(void) { static const char m[] = "probe: symbol lookup error: undefined symbol: %s\\n"; (void)!write(2, m, sizeof m - 1); _exit(127); }\n' "$f" "$f" ;;
      esac
    done
  } > "$run_dir/privdata.c"
  gcc -shared -fPIC -o "$run_dir/privdata.so" "$run_dir/privdata.c" || die "building the private-data shim failed"
  shim=$run_dir/privdata.so
  note "private globals our libraries lack, stubbed by a preloaded shim: $(for m in "${missing[@]}"; do printf '%s ' "${m%% *}"; done)"
}

# ---------------------------------------------------------------- run one test
# Writes "test<TAB>STATUS<TAB>seconds<TAB>detail" to $2.
run_one() {
  local t=$1 out=$2 log=$2.log rc=0 st detail start end
  start=$(date +%s%N)
  if [ "$debian" = 1 ]; then
    (cd "$run_dir/work" && env -u LD_LIBRARY_PATH -u LD_PRELOAD EVENT_NO_FILE_BUFFERING=1 \
      timeout -k 5 "$timeout_s" "$cache/build/regress" "$t") > "$log" 2>&1 || rc=$?
  else
    (cd "$run_dir/work" && env LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
      ${shim:+LD_PRELOAD="$shim"} EVENT_NO_FILE_BUFFERING=1 \
      timeout -k 5 "$timeout_s" "$cache/build/regress" "$t") > "$log" 2>&1 || rc=$?
  fi
  end=$(date +%s%N)
  detail=""
  if [ $rc = 124 ] || [ $rc = 137 ]; then
    st=TIMEOUT detail="killed after ${timeout_s}s"
  elif grep -q 'symbol lookup error.*undefined symbol: ' "$log"; then
    st=MISSING-SYMBOL
    detail=$(sed -n 's/.*undefined symbol: \([^ ,]*\).*/\1/p' "$log" | head -n 1)
  elif grep -q 'error while loading shared libraries' "$log"; then
    st=CRASH detail=$(grep -m1 'error while loading shared libraries' "$log" | sed 's/.*: error/error/')
  elif [ $rc -gt 128 ]; then
    st=CRASH detail="killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
  elif grep -q '\[Lost connection!\]' "$log"; then
    st=CRASH detail="the forked test process died"
  elif [ $rc = 0 ] && grep -q '^1 tests ok\.  (0 skipped)' "$log"; then
    st=PASS
  elif [ $rc = 0 ] && grep -q '^0 tests ok\.  (1 skipped)' "$log"; then
    st=SKIPPED detail="skipped by the test itself"
  else
    st=FAIL
    detail=$(grep -m1 -E '^ *(FAIL|\[.*FAILED\])|\[atexit failure!\]' "$log" \
      | sed -e 's/^ *//' -e "s|$cache/src/||g" | cut -c1-160 || true)
    [ -n "$detail" ] || detail="exit status $rc"
  fi
  printf '%s\t%s\t%s\t%s\n' "$t" "$st" "$(((end - start) / 1000000))" "$detail" > "$out"
}

# ---------------------------------------------------------------- main
fetch_source
build_regress
label="" shim=""
prepare_libs
[ "$nodebuglocks" = 0 ] || { label=$label-no-debug-locks; export EVENT_NO_DEBUG_LOCKS=1; }
[ "$probe" = 0 ] || label=$label-probe
run_dir=$cache/$label
rm -rf "$run_dir"
mkdir -p "$run_dir/res" "$run_dir/work"
make_privdata_shim
[ -n "$summary" ] || summary=$run_dir/summary.txt

# The exclusions are for drop-in libraries; the --debian baseline runs every test.
declare -A excluded=()
while read -r t reason; do
  case $t in '' | '#'*) continue ;; esac
  excluded[$t]=$reason
done < "$here/excluded.txt"

tests=()
for g in "${groups[@]}"; do
  while read -r t; do tests+=("$t"); done < <(grep "^$g/" "$cache/build/tests.txt")
done
note "running ${#tests[@]} tests of: ${groups[*]} (against $label${libs:+ libraries in $libs}, ${timeout_s}s watchdog, $jobs at a time)"

i=0 running=0
for t in "${tests[@]}"; do
  i=$((i + 1))
  res=$run_dir/res/$(printf '%04d' "$i")
  if [ "$debian" = 0 ] && [ -n "${excluded[$t]+x}" ]; then
    printf '%s\tEXCLUDED\t0\t%s\n' "$t" "${excluded[$t]}" > "$res"
    continue
  fi
  run_one "$t" "$res" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
done
wait

# ---------------------------------------------------------------- report
cat "$run_dir"/res/[0-9][0-9][0-9][0-9] > "$run_dir/results.tsv"
{
  printf '%-15s %-55s %7s  %s\n' STATUS TEST ms DETAIL
  awk -F'\t' '{ printf "%-15s %-55s %7s  %s\n", $2, $1, $3, $4 }' "$run_dir/results.tsv"
  echo
  awk -F'\t' -v groups="${groups[*]}" -v label="$label" '
    { split($1, p, "/"); g = p[1]; n[g]++; c[g, $2]++; tn++; tc[$2]++
      if ($2 == "MISSING-SYMBOL") { ms[$4]++ } }
    function line(name, total, pass, skip, fail, miss, crash, tmo, excl) {
      printf "%-12s %3d/%-3d ok   pass %3d  skipped %2d  fail %3d  missing-symbol %3d  crash %3d  timeout %3d  excluded %3d\n",
        name, pass + skip, total, pass, skip, fail, miss, crash, tmo, excl }
    END {
      ng = split(groups, gs, " ")
      for (i = 1; i <= ng; i++) { g = gs[i]
        line(g, n[g], c[g, "PASS"], c[g, "SKIPPED"], c[g, "FAIL"], c[g, "MISSING-SYMBOL"], c[g, "CRASH"], c[g, "TIMEOUT"], c[g, "EXCLUDED"]) }
      line("TOTAL", tn, tc["PASS"], tc["SKIPPED"], tc["FAIL"], tc["MISSING-SYMBOL"], tc["CRASH"], tc["TIMEOUT"], tc["EXCLUDED"])
      printf "regress (%s): %d/%d ok, %d excluded\n", label, tc["PASS"] + tc["SKIPPED"], tn, tc["EXCLUDED"]
      if (length(ms)) {
        print "\nmissing symbols (first one each test hit) by tests blocked:"
        cmd = "sort -k1,1nr -k2"
        for (s in ms) printf "%5d  %s\n", ms[s], s | cmd
        close(cmd)
      }
    }' "$run_dir/results.tsv"
} > "$summary.tmp"
mv "$summary.tmp" "$summary"
cat "$summary"
echo "(summary: $summary; per-test output: $run_dir/res/*.log)"

ok=$(awk -F'\t' '$2 == "PASS" || $2 == "SKIPPED" { n++ } END { print n + 0 }' "$run_dir/results.tsv")
if [ -n "$require" ] && [ "$ok" -lt "$require" ]; then
  echo "run.sh: $ok tests ok, fewer than the required $require" >&2
  exit 1
fi
exit 0
