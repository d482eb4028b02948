#!/bin/bash
# The publisher alone: CPU per event while it drains a full queue to a
# local nats-server and e2e-sub, against a bare nats.c publisher (e2e-pub)
# of the same message size and count right after it, in the same run. No
# eBPF, no collector, no tracee: e2e-fill writes the queue as the collector
# would. See docs/performance.md, "End-to-end throughput" (publisher cost).
#
#   bench/e2e/drain.sh [BUILD_DIR]
#
# Several publisher builds can be compared in one run (interleaved, each
# trial followed by its own baseline), e.g. the tree before a change:
#   PUBLISHERS="before=/tmp/pub-before/build/publisher/ebpf-publisher
#               after=build-bench/publisher/ebpf-publisher" bench/e2e/drain.sh
#
# Environment:
#   COUNT=1000000  events per trial
#   SIZE=0         0: mempool:added; N: net:inbound_message, N-byte payload
#   RUNS=5         trials per publisher
#   PUBLISHERS     label=path ... (default: this build's, labelled "pub")
#   PERF=label     perf record -g the first trial of that publisher
#                  (OUT/perf-label.data; `perf report -i` it; PERF_OPTS: other
#                  perf record options than -g, e.g. "--call-graph dwarf")
#   OUT=DIR        results (default BUILD_DIR/bench/e2e/results)
#
# Per trial: publisher us/event = its utime+stime (/proc/PID/stat, from its
# start to the arrival of the last event at e2e-sub) / events; the baseline
# e2e-pub us/msg from /usr/bin/time; ratio = publisher / e2e-pub of the
# same run. Every trial also checks that every seq arrived once.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-$SRC/build-bench}
COUNT=${COUNT:-1000000}
SIZE=${SIZE:-0}
RUNS=${RUNS:-5}

die() { echo "drain bench: $*" >&2; exit 1; }
log() { echo "drain bench: $*" >&2; }
# stop_pid, wait_file, start_nats, cpu_ticks, field, baseline, ...
. "$SRC/bench/e2e/lib.sh"

command -v nats-server >/dev/null || die "nats-server not found (scripts/install-deps.sh installs it)"
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
	cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSANITIZE=OFF >/dev/null
fi
grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$BUILD/CMakeCache.txt" || die "$BUILD is not a Release build"
cmake --build "$BUILD" -j"$(nproc)" --target e2e-sub e2e-pub e2e-fill ebpf-publisher >/dev/null ||
	die "build failed (cmake --build $BUILD --target e2e-sub e2e-pub e2e-fill ebpf-publisher)"

ESUB=$BUILD/bench/e2e/e2e-sub
EPUB=$BUILD/bench/e2e/e2e-pub
FILL=$BUILD/bench/e2e/e2e-fill
PUBLISHERS=${PUBLISHERS:-pub=$BUILD/publisher/ebpf-publisher}
for p in $PUBLISHERS; do [ -x "${p#*=}" ] || die "no publisher at ${p#*=} ($p)"; done
OUT=${OUT:-$BUILD/bench/e2e/results}
mkdir -p "$OUT"
RAW=$OUT/drain-$(date -u +%Y%m%dT%H%M%SZ).tsv
TMP=$(mktemp -d /tmp/drain-bench.XXXXXX)
QDIR=/dev/shm/drain-bench-queue.$$
PREFIX=bench.drain

NPID= SPID= PPID_= PERFPID=
cleanup() {
	stop_pid "$PERFPID" INT
	stop_pid "$PPID_" TERM
	stop_pid "$SPID" TERM
	stop_pid "$NPID" TERM
	rm -rf "$TMP" "$QDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_nats

# drain LABEL PUBLISHER [perf]: fills the queue, lets the publisher drain it;
# leaves one result line in $LINE.
drain() {
	local label=$1 pub=$2 perf=${3:-} n0 s0 n1 s1 p1 st ev
	rm -rf "$QDIR" "$TMP"/t.*
	start_esub
	"$FILL" --queue "$QDIR" --count "$COUNT" --size "$SIZE" || die "e2e-fill failed"
	n0=$(cpu_ticks $NPID); s0=$(cpu_ticks $SPID)
	"$pub" --queue "$QDIR" -n "127.0.0.1:$PORT" --subject-prefix "$PREFIX" --node-name bench \
		--stats-interval 1 -l warn 2>"$TMP/t.publisher.err" &
	PPID_=$!
	if [ -n "$perf" ]; then
		perf record ${PERF_OPTS:--g} -q -o "$OUT/perf-$label.data" -p $PPID_ 2>"$TMP/t.perf.err" &
		PERFPID=$!
	fi
	wait_events "$COUNT"
	p1=$(cpu_ticks $PPID_); n1=$(cpu_ticks $NPID); s1=$(cpu_ticks $SPID)
	stop_pid "$PERFPID" INT; PERFPID=
	stop_pid "$PPID_" TERM; PPID_=
	stop_pid "$SPID" TERM; SPID=
	st=$(cat "$TMP/t.status")
	ev=$(field events "$st")
	LINE=$(printf 'publisher=%s count=%s events=%s missing=%s dups=%s rate=%s pub_ticks=%s nats_ticks=%s sub_ticks=%s bytes=%s' \
		"$label" "$COUNT" "$ev" "$(field missing "$st")" "$(field dups "$st")" \
		"$(rate_of "$ev" "$(field first_recv_ns "$st")" "$(field last_recv_ns "$st")")" \
		"$p1" $((n1 - n0)) $((s1 - s0)) "$(field bytes "$st")")
}

echo "# drain, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), count $COUNT, size $SIZE, runs $RUNS" >"$RAW"
for run in $(seq "$RUNS"); do
	for p in $PUBLISHERS; do
		label=${p%%=*}
		perf=
		[ "$run" = 1 ] && [ "${PERF:-}" = "$label" ] && perf=1
		drain "$label" "${p#*=}" $perf
		echo "drain $LINE" >>"$RAW"
		ev=$(field events "$LINE")
		[ "$ev" = "$COUNT" ] || log "$label run $run: only $ev of $COUNT events arrived"
		wire=$(awk -v b="$(field bytes "$LINE")" -v n="$ev" 'BEGIN { printf "%d", (n > 0) ? b / n : 0 }')
		[ "$wire" -ge 64 ] || wire=64
		baseline "$COUNT" "$wire"
		echo "base publisher=$label $LINE" >>"$RAW"
		log "$label run $run: drained at $(field rate "$(grep '^drain' "$RAW" | tail -1)")/s; NATS alone $(field rate "$LINE")/s"
	done
done

awk -v tck="$(getconf CLK_TCK)" "$AWK_STATS"'
function kv(   i, p) { delete f; for (i = 2; i <= NF; i++) { p = index($i, "="); f[substr($i, 1, p - 1)] = substr($i, p + 1) } }
/^#/ { print; next }
$1 == "drain" { kv(); w = f["publisher"]; if (!(w in seen)) { seen[w] = 1; order[++nw] = w }
	ok[w] += (f["events"] == f["count"] && f["missing"] == 0 && f["dups"] == 0); runs[w]++
	pub = f["pub_ticks"] / tck * 1e6 / f["count"]; add(w SUBSEP "pub", pub)
	add(w SUBSEP "rate", f["rate"]); add(w SUBSEP "nats", f["nats_ticks"] / tck * 1e6 / f["count"])
	add(w SUBSEP "sub", f["sub_ticks"] / tck * 1e6 / f["count"]); wire[w] = f["bytes"] / f["count"] }
$1 == "base" { kv(); w = f["publisher"]; b = f["pub_cpu_s"] * 1e6 / f["count"]
	add(w SUBSEP "base", b); if (b > 0) add(w SUBSEP "ratio", pub / b); add(w SUBSEP "brate", f["rate"]) }
END {
	print "per trial min / median / max; ratio = publisher us/event / e2e-pub us/msg of the same run"
	printf "%-8s %-6s %-8s %-22s %-22s %-22s %-22s %-22s %-22s %s\n", "build", "bytes", "all ok", "publisher us/event", "e2e-pub us/msg", "ratio", "drain events/s", "NATS alone msgs/s", "nats-server us/ev", "e2e-sub us/ev"
	for (i = 1; i <= nw; i++) { w = order[i]
		printf "%-8s %-6.0f %-8s %-22s %-22s %-22s %-22s %-22s %-22s %s\n", w, wire[w], ok[w] "/" runs[w], stat(w SUBSEP "pub", "%.2f"), stat(w SUBSEP "base", "%.2f"),
			stat(w SUBSEP "ratio", "%.2f"), stat(w SUBSEP "rate", "%.0f"), stat(w SUBSEP "brate", "%.0f"), stat(w SUBSEP "nats", "%.2f"), stat(w SUBSEP "sub", "%.2f") }
}' "$RAW" | tee "${RAW%.tsv}.txt"
echo "(raw trials: $RAW)"
