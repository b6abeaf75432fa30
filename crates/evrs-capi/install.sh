#!/usr/bin/env bash
# install.sh [--debug] PREFIX
#
# Builds evrs's libevent 2.1 C ABI and installs it under PREFIX, laid out as libevent is:
#   PREFIX/lib/libevent_core-2.1.so.7, libevent-2.1.so.7, libevent_pthreads-2.1.so.7
#              (+ the libevent*.so development links and libevrs_capi.so beside them)
#   PREFIX/include/event2/*.h, PREFIX/include/event.h, evutil.h
#   PREFIX/lib/pkgconfig/libevent.pc, libevent_core.pc, libevent_pthreads.pc
# Then: gcc x.c $(PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pkg-config --cflags --libs libevent)
# builds against evrs, and existing binaries run on it with LD_LIBRARY_PATH=PREFIX/lib.
set -euo pipefail
profile=release
if [ "${1:-}" = --debug ]; then profile=debug; shift; fi
[ $# = 1 ] || { echo "usage: $0 [--debug] PREFIX" >&2; exit 64; }
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
prefix=$(cd "$1" && pwd)

flag=--release
[ $profile = debug ] && flag=
(cd "$here" && cargo build -q $flag -p evrs-capi)
target=$(cd "$here" && cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
"$here/build-libs.sh" "$target/$profile" "$prefix/lib" >/dev/null

mkdir -p "$prefix/include" "$prefix/lib/pkgconfig"
cp -R "$here/include/event2" "$prefix/include/"
cp "$here/include/event.h" "$here/include/evutil.h" "$prefix/include/"

pc() { # name description requires
  cat > "$prefix/lib/pkgconfig/$1.pc" <<PC
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: $1
Description: $2 (evrs: libevent 2.1 compatible)
Version: 2.1.12-stable
Requires: $3
Conflicts:
Libs: -L\${libdir} -l${1#lib}
Libs.private:
Cflags: -I\${includedir}
PC
}
pc libevent "the event notification library" ""
pc libevent_core "libevent's core: events, buffers, bufferevents, listeners" ""
pc libevent_pthreads "pthreads-based threading support for libevent" "libevent"
echo "installed evrs's libevent 2.1 ABI under $prefix"
