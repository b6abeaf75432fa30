#!/usr/bin/env bash
# check_prototypes.sh -- compare the function prototypes of evrs's libevent
# headers with those of an installed libevent 2.1.12 (e.g. Debian's
# libevent-dev), symbol by symbol.
#
# usage: check_prototypes.sh [-v] [REF_INCLUDE_DIR [SYMBOLS_DIR]]
#   REF_INCLUDE_DIR  include dir holding the reference event2/ headers
#                    (default /usr/include)
#   SYMBOLS_DIR      the symbols/ dir of the ABI reference
#                    (default /work/shared/reference/abi/symbols)
#   -v               also print every prototype that matched
#
# How: gcc -aux-info writes one normalized line per function declaration
# (typedefs kept, macros such as evutil_socket_t expanded, parameter names
# dropped), tagged with the declaring file.  The same translation unit is
# compiled once against the reference headers and once against ours; for
# every public symbol that the reference symbol lists attribute to a header
# written here, the declaring header and the prototype text must be
# identical.  Functions declared by ours but not by the reference are
# reported too.  Exit status 0 only if there are no differences.
set -u
export LC_ALL=C

verbose=0
[ "${1:-}" = -v ] && { verbose=1; shift; }
ours=$(cd "$(dirname "$0")" && pwd -P)
ref=${1:-/usr/include}
symdir=${2:-/work/shared/reference/abi/symbols}
CC=${CC:-gcc}

# The headers written for the core, compat and config groups (plus tag.h,
# which the 1.x <event.h> pulls in).
headers="event2/event-config.h event2/visibility.h event2/util.h
event2/event.h event2/event_struct.h event2/event_compat.h event2/buffer.h
event2/buffer_compat.h event2/bufferevent.h event2/bufferevent_struct.h
event2/bufferevent_compat.h event2/listener.h event2/thread.h
event2/keyvalq_struct.h event2/tag.h event2/tag_compat.h evutil.h event.h"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for h in $headers; do
	[ -f "$ours/$h" ] || { echo "missing here: $h"; exit 2; }
	[ -f "$ref/$h" ] || { echo "missing in $ref: $h"; exit 2; }
	echo "#include <$h>"
done > "$tmp/all.c"

# prototypes INCDIR OUT -- "NAME<TAB>HEADER<TAB>PROTOTYPE" for every function
# declared in a header under INCDIR, sorted by name.
prototypes() {
	local inc=$1 out=$2
	if ! $CC -std=gnu11 -fsyntax-only -I "$inc" -aux-info "$out.aux" \
		"$tmp/all.c" 2> "$out.err"; then
		echo "FATAL: the headers in $inc do not compile:"; sed 's/^/    /' "$out.err" | head -20
		exit 2
	fi
	awk -v inc="$inc/" '
	{
		# /* FILE:LINE:XX */ PROTOTYPE
		file = $2; sub(/:[0-9]+:[A-Za-z]+$/, "", file)
		if (index(file, inc) != 1) next
		hdr = substr(file, length(inc) + 1)
		proto = $0; sub(/^\/\*[^*]*\*\/ */, "", proto)
		gsub(/[ \t]+/, " ", proto); sub(/ $/, "", proto)
		# the name is the identifier right before the first " ("
		name = proto; sub(/ \(.*/, "", name); sub(/.*[ *]/, "", name)
		printf "%s\t%s\t%s\n", name, hdr, proto
	}' "$out.aux" | sort -u > "$out"
}

prototypes "$(cd "$ref" && pwd -P)" "$tmp/ref"
prototypes "$ours" "$tmp/ours"

# Public symbols of the headers above: libevent_core plus the headers' share
# of libevent_pthreads and libevent_extra (evthread_use_pthreads, evtag_*).
hdr_re=$(printf '%s\n' $headers | sed 's/[.]/[.]/g' | paste -sd'|')
cat "$symdir/libevent_core.txt" "$symdir/libevent_pthreads.txt" \
	"$symdir/libevent_extra.txt" | grep -v '^#' |
	awk -v re="^($hdr_re)\$" '$3 != "-" && $3 ~ re { print $1 "\t" $3 }' |
	sort -u > "$tmp/public"

ndiff=0 nok=0
while IFS='	' read -r name hdr; do
	r=$(awk -F'\t' -v n="$name" '$1 == n' "$tmp/ref")
	o=$(awk -F'\t' -v n="$name" '$1 == n' "$tmp/ours")
	if [ -z "$r" ]; then
		echo "REFERENCE LACKS $name ($hdr): not declared by $ref"; ndiff=$((ndiff + 1)); continue
	fi
	if [ -z "$o" ]; then
		echo "MISSING  $name ($hdr)"; echo "    ref:  ${r#*	*	}"; ndiff=$((ndiff + 1)); continue
	fi
	if [ "$r" != "$o" ]; then
		echo "DIFFERS  $name"
		echo "    ref:  $(printf '%s' "$r" | cut -f2,3 | tr '\t' ' ')"
		echo "    ours: $(printf '%s' "$o" | cut -f2,3 | tr '\t' ' ')"
		ndiff=$((ndiff + 1)); continue
	fi
	nok=$((nok + 1))
	[ $verbose = 1 ] && printf 'ok       %s\n' "$(printf '%s' "$o" | cut -f3)"
done < "$tmp/public"

# Functions we declare that are no public symbol of these headers.
cut -f1 "$tmp/public" > "$tmp/public.names"
cut -f1 "$tmp/ours" | sort -u | comm -23 - "$tmp/public.names" > "$tmp/extra"
while read -r name; do
	echo "EXTRA    $name: declared here, not a public symbol of these headers"
	ndiff=$((ndiff + 1))
done < "$tmp/extra"

echo "prototypes: $nok identical, $ndiff differences" \
	"($(wc -l < "$tmp/public") public symbols; reference $ref)"
[ $ndiff = 0 ]
