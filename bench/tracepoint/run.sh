#!/bin/bash
# What a tracepoint costs the traced thread, with our BPF program attached,
# against the empty program bench_empty attached to the same probe in the
# same run. See docs/performance.md, "Tracepoint cost".
#
#   bench/tracepoint/run.sh [BUILD_DIR]
#   bench/tracepoint/run.sh --table RESULTS.tsv   (the table of an earlier run)
#
# BUILD_DIR (default: build-bench in the source tree) must be a Release build
# without SANITIZE; when it is not, the script builds one in build-bench.
# Needs root (or CAP_BPF + CAP_PERFMON + CAP_SYS_ADMIN for the profiling
# pass's BPF_ENABLE_STATS); without eBPF privileges it prints SKIP and exits
# 77 (REQUIRE_BPF=1 makes that a failure, exit 1).
#
# Environment:
#   RUNS=5            runs; each run measures every workload in every condition
#   FIRE_CPU=0        CPU of the traced thread (tp-bench-fire)
#   HELPER_CPU=1      CPU of ebpf-collector, the queue reader and the loader
#   WORKLOADS=...     space-separated names (default: all, see workload_spec)
#   DIAG=0            1: also measure "ours, collector paused" (see below)
#   PROFILE=1         a profiling pass after the timed runs: the kernel's BPF
#                     run time per event (BPF_ENABLE_STATS), not used in ratios
#   OUT=DIR           where results go (default BUILD_DIR/bench/tracepoint/results)
#   CONDITIONS="..."  only these conditions (default: all that apply)
#   ALT_COLLECTOR=P   also measure another ebpf-collector binary (condition
#                     "alt"), e.g. one built with another bpf/extractor.bpf.c,
#                     to compare a BPF change with the current one in one run
#
# Conditions, interleaved within each run (the order rotates from run to run
# to cancel drift and order effects):
#   none    nothing attached: the probe's semaphore is 0, the loop's own cost
#   empty   bench_empty on the probe (uprobe-multi link, tp-bench-empty)
#   ours    the real ebpf-collector (default options) writing to a real queue
#           in /dev/shm that tp-bench-drain reads and checks
#   floor   (mempool:added workloads) bench_floor_mempool_added on the probe:
#           the tracepoint's arguments copied into a ring record and nothing
#           else (no timestamp, pid, drop count or wake-up; nobody reads the
#           ring): the least any extractor must do, so floor/empty is the best
#           ratio a program could reach here
#   paused  (DIAG) ours with the collector stopped (SIGSTOP) while firing.
#           Since the lazy wake-up (docs/performance.md) a stopped collector
#           has said it sleeps, so every event forces a wake-up: paused now
#           measures that, not the program body alone (floor replaced it)
#   alt     (ALT_COLLECTOR) as ours, with that collector binary
#   altpaused  (ALT_COLLECTOR and DIAG) as paused, with that binary: the
#           comparison of two BPF programs without the wake-ups' noise
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-$SRC/build-bench}
RUNS=${RUNS:-5}
FIRE_CPU=${FIRE_CPU:-0}
HELPER_CPU=${HELPER_CPU:-1}
DIAG=${DIAG:-0}
PROFILE=${PROFILE:-1}
ALL_WORKLOADS="added added_paced p2p_100 p2p_10k p2p_1m"
WORKLOADS=${WORKLOADS:-$ALL_WORKLOADS}

die() { echo "tracepoint bench: $*" >&2; exit 1; }

# label|tp-bench-fire arguments|metric|payload bytes
# metric cpu: the tight loop's thread CPU time / events; wall: paced events
# (the thread spins between them), each timed alone, mean per event without
# the ones it was preempted in. Large payloads are paced (100 MB/s) so that
# the collector keeps up: at the tight loop's rate the ring would fill and
# the program would only count drops, which is cheaper, not dearer.
workload_spec() {
	case $1 in
	added)       echo "mempool:added|mempool_added 100000|cpu|0" ;;
	added_paced) echo "mempool:added 1/100us|--interval-us 100 mempool_added 5000|wall|0" ;;
	p2p_100)     echo "inbound_msg 100 B|p2p:100 50000|cpu|100" ;;
	p2p_10k)     echo "inbound_msg 10 KB 1/100us|--interval-us 100 p2p:10000 5000|wall|10000" ;;
	p2p_1m)      echo "inbound_msg 1 MB 1/10ms|--interval-us 10000 p2p:1000000 100|wall|1000000" ;;
	*) die "unknown workload '$1' (known: $ALL_WORKLOADS)" ;;
	esac
}

# Ring bytes one event takes (8-byte ring header per record), for "paused":
# with nobody consuming, every event of a measurement must fit in the ring.
ring_bytes_per_event() { # payload size of a P2P message
	local size=$1 full=$(($1 / 32768)) last=$(($1 % 32768)) cls=64
	local bytes=$((392 + full * (32 + 16 + 32768 + 8)))
	if [ "$last" -gt 0 ]; then
		while [ $cls -lt "$last" ]; do cls=$((cls * 2)); done
		bytes=$((bytes + 32 + 16 + cls + 8))
	fi
	echo $bytes
}

# ---- the table (also: run.sh --table RESULTS.tsv, from an earlier run) ----

print_table() { # raw.tsv profile.tsv
	local labels="" w label
	for w in $ALL_WORKLOADS; do
		IFS='|' read -r label _ _ _ <<<"$(workload_spec "$w")"
		labels="$labels$w|$label;"
	done
	awk -F'\t' -v labels="$labels" -v prof="$2" -v head="$(head -2 "$1")" '
function sort(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
function stat(key,   n, i, a, med) { # "min / median / max" of the values listed under key
	n = cnt[key]; if (n == 0) return ""
	for (i = 1; i <= n; i++) a[i] = val[key, i]
	sort(a, n)
	med = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	mn[key] = a[1]; md[key] = med; mx[key] = a[n]
	return 1
}
function add(key, v) { cnt[key]++; val[key, cnt[key]] = v }
# One line per workload that has values under k1: "label  fmt(k1)  fmt(k2)".
function ratio_table(title, col1, col2, k1, k2, width, d,   i, w, first) {
	first = 1
	for (i = 1; i <= nw; i++) {
		w = wl[i]
		if (!cnt[w SUBSEP k1]) continue
		if (first) { print ""; print title; printf "%-33s %-" width "s %s\n", "workload", col1, col2; first = 0 }
		printf "%-33s %-" width "s %s\n", label[w], fmt(w SUBSEP k1, d), fmt(w SUBSEP k2, d)
	}
}
function cond_name(cc) { return (cc == 0) ? "none" : (cc == 1) ? "empty" : (cc == 2) ? "ours" : (cc == 3) ? "floor" : (cc == 4) ? "paused" : (cc == 5) ? "alt" : "altpaused" }
function fmt(key, d) { return stat(key) ? sprintf("%." d "f / %." d "f / %." d "f", mn[key], md[key], mx[key]) : "-" }
BEGIN {
	n = split(labels, l, ";"); for (i = 1; i <= n; i++) if (split(l[i], p, "|") == 2) label[p[1]] = p[2]
}
/^#/ || $1 == "run" { next }
{
	w = $2; c = $3; v = ($4 == "wall") ? $5 : $6
	if (!(w in seen)) { seen[w] = 1; wl[++nw] = w }
	t[$1, w, c] = v; runs[$1] = 1; metric[w] = $4; size[w] = $11
	add(w SUBSEP c, v)
	if ($13 != "" && $13 != "NA") { cy[$1, w, c] = $13; add(w SUBSEP c SUBSEP "cy", $13); add(w SUBSEP c SUBSEP "in", $14) }
	if (c == "ours" || c == "paused" || c == "alt" || c == "altpaused") {
		fired[w] += $7; deliv[w] += $8; lost[w] += $9; bad[w] += $10
		if ($8 != $7 || $9 != 0 || $10 != 0) problems[w]++
	}
}
END {
	print head
	print ""
	print "ns per event of the traced thread: min / median / max over runs"
	printf "%-33s %-9s %-30s %s\n", "workload", "cond", "ns/event", "added over none"
	for (i = 1; i <= nw; i++) {
		w = wl[i]
		for (r in runs) {
			if (!((r, w, "none") in t)) continue
			for (cc = 1; cc <= 6; cc++) {
				c = cond_name(cc)
				if ((r, w, c) in t) add(w SUBSEP c SUBSEP "added", t[r, w, c] - t[r, w, "none"])
			}
			if ((r, w, "empty") in t && (r, w, "ours") in t) {
				add(w SUBSEP "ratio_total", t[r, w, "ours"] / t[r, w, "empty"])
				d = t[r, w, "empty"] - t[r, w, "none"]
				if (d > 0) add(w SUBSEP "ratio_added", (t[r, w, "ours"] - t[r, w, "none"]) / d)
				if (size[w] > 0) {
					add(w SUBSEP "bps", 1000 * size[w] / t[r, w, "ours"])
					if (t[r, w, "ours"] > t[r, w, "empty"])
						add(w SUBSEP "copy_bps", 1000 * size[w] / (t[r, w, "ours"] - t[r, w, "empty"]))
				}
			}
			if ((r, w, "empty") in cy && (r, w, "ours") in cy && cy[r, w, "empty"] > 0)
				add(w SUBSEP "cy_ratio", cy[r, w, "ours"] / cy[r, w, "empty"])
			if ((r, w, "empty") in t && (r, w, "floor") in t) {
				add(w SUBSEP "floor_total", t[r, w, "floor"] / t[r, w, "empty"])
				if ((r, w, "ours") in t) add(w SUBSEP "ours_floor", t[r, w, "ours"] / t[r, w, "floor"])
			}
			if ((r, w, "empty") in cy && (r, w, "floor") in cy && cy[r, w, "empty"] > 0)
				add(w SUBSEP "cyf_ratio", cy[r, w, "floor"] / cy[r, w, "empty"])
			if ((r, w, "empty") in cy && (r, w, "paused") in cy && cy[r, w, "empty"] > 0)
				add(w SUBSEP "cyp_ratio", cy[r, w, "paused"] / cy[r, w, "empty"])
			if ((r, w, "altpaused") in cy && (r, w, "paused") in cy && cy[r, w, "altpaused"] > 0)
				add(w SUBSEP "cy_altp", cy[r, w, "paused"] / cy[r, w, "altpaused"])
			if ((r, w, "alt") in cy && (r, w, "ours") in cy && cy[r, w, "alt"] > 0)
				add(w SUBSEP "cy_alt", cy[r, w, "ours"] / cy[r, w, "alt"])
			if ((r, w, "alt") in t && (r, w, "ours") in t) {
				add(w SUBSEP "alt_total", t[r, w, "ours"] / t[r, w, "alt"])
				d = t[r, w, "alt"] - t[r, w, "none"]
				if (d > 0) add(w SUBSEP "alt_added", (t[r, w, "ours"] - t[r, w, "none"]) / d)
			}
			if ((r, w, "altpaused") in t && (r, w, "paused") in t) {
				add(w SUBSEP "altp_total", t[r, w, "paused"] / t[r, w, "altpaused"])
				d = t[r, w, "altpaused"] - t[r, w, "empty"]
				if (d > 0) add(w SUBSEP "altp_body", (t[r, w, "paused"] - t[r, w, "empty"]) / d)
			}
			if ((r, w, "paused") in t && (r, w, "ours") in t) {
				add(w SUBSEP "wake", t[r, w, "ours"] - t[r, w, "paused"])
				add(w SUBSEP "body", t[r, w, "paused"] - t[r, w, "empty"])
			}
		}
		name = label[w] (metric[w] == "wall" ? " (wall)" : "")
		for (cc = 0; cc <= 6; cc++) {
			c = cond_name(cc)
			if (!cnt[w SUBSEP c]) continue
			printf "%-33s %-9s %-30s %s\n", (cc == 0 ? name : ""), c, fmt(w SUBSEP c, 1),
				(cc == 0 ? "" : fmt(w SUBSEP c SUBSEP "added", 1))
		}
	}
	print ""
	print "ours against empty, per run (min / median / max)"
	printf "%-33s %-22s %-22s %s\n", "workload", "total: ours/empty", "added: (ours-none)/(empty-none)", "nothing lost"
	for (i = 1; i <= nw; i++) {
		w = wl[i]
		printf "%-33s %-22s %-31s %s\n", label[w], fmt(w SUBSEP "ratio_total", 2), fmt(w SUBSEP "ratio_added", 2),
			(problems[w] ? "NO: " problems[w] " measurement(s) with a difference" : sprintf("yes: %d of %d events delivered, 0 lost, 0 bad", deliv[w], fired[w]))
	}
	first = 1
	for (i = 1; i <= nw; i++) {
		w = wl[i]
		if (!cnt[w SUBSEP "none" SUBSEP "cy"]) continue
		if (first) { print ""; print "hardware counters of the traced thread per event, tight loops (min / median / max): cycles leave out"; print "preemption and the host taking the vCPU, but also the host-side handling of VM exits of the thread (IPIs)"; printf "%-33s %-10s %-33s %s\n", "workload", "cond", "cycles/event", "instructions/event"; first = 0 }
		for (cc = 0; cc <= 6; cc++) {
			c = cond_name(cc)
			if (!cnt[w SUBSEP c SUBSEP "cy"]) continue
			printf "%-33s %-10s %-33s %s\n", (cc == 0 ? label[w] : ""), c, fmt(w SUBSEP c SUBSEP "cy", 0), fmt(w SUBSEP c SUBSEP "in", 0)
		}
		if (cnt[w SUBSEP "cy_ratio"]) printf "%-33s %-10s %s\n", "", "ours/empty", fmt(w SUBSEP "cy_ratio", 2)
		if (cnt[w SUBSEP "cyf_ratio"]) printf "%-33s %-10s %s\n", "", "floor/empty", fmt(w SUBSEP "cyf_ratio", 2)
		if (cnt[w SUBSEP "cyp_ratio"]) printf "%-33s %-10s %s\n", "", "paused/empty", fmt(w SUBSEP "cyp_ratio", 2)
		if (cnt[w SUBSEP "cy_alt"]) printf "%-33s %-10s %s\n", "", "ours/alt", fmt(w SUBSEP "cy_alt", 3)
		if (cnt[w SUBSEP "cy_altp"]) printf "%-33s %-10s %s\n", "", "paused/altpaused", fmt(w SUBSEP "cy_altp", 3)
	}
	ratio_table("the floor (arguments copied, nothing else) against empty, and ours against it, per run (min / median / max)",
		"floor/empty", "ours/floor", "floor_total", "ours_floor", 22, 2)
	ratio_table("ours against alt (ALT_COLLECTOR), per run (min / median / max)",
		"total: ours/alt", "added: (ours-none)/(alt-none)", "alt_total", "alt_added", 22, 3)
	ratio_table("paused against altpaused (the program bodies), per run (min / median / max)",
		"total: paused/altpaused", "body: (paused-empty)/(altpaused-empty)", "altp_total", "altp_body", 22, 3)
	ratio_table("where the added time of ours goes (ns/event, min / median / max)",
		"program: paused - empty", "ring wake-ups: ours - paused", "body", "wake", 26, 1)
	ratio_table("P2P payload throughput (MB/s = 10^6 bytes/s, min / median / max)",
		"traced thread: size/ours", "copy: size/(ours-empty)", "bps", "copy_bps", 26, 0)
	# profiling pass
	np = 0
	while ((getline line < prof) > 0) {
		split(line, f, "\t")
		if (f[3] > 0) pns[f[1], f[2]] = sprintf("%.0f", f[4] / f[3])
		np++
	}
	if (np) {
		print ""
		print "profiling pass (one run, BPF_ENABLE_STATS on): kernel-measured BPF program time per run, ns"
		printf "%-33s %-10s %s\n", "workload", "empty", "ours"
		for (i = 1; i <= nw; i++) { w = wl[i]; printf "%-33s %-10s %s\n", label[w], pns[w, "empty"], pns[w, "ours"] }
	}
}' "$1"
}

if [ "${1:-}" = --table ]; then
	[ -f "${2:-}" ] || die "usage: run.sh --table RESULTS.tsv"
	print_table "$2" "${2%.tsv}.profile.tsv"
	exit 0
fi

# ---- privileges, before building anything ----

skip() {
	[ "${REQUIRE_BPF:-0}" = 1 ] && die "$1"
	echo "SKIP: tracepoint bench: $1" >&2
	exit 77
}
# CapEff: CAP_SYS_ADMIN (21) stands in for CAP_BPF (39) and CAP_PERFMON (38)
capeff=$((16#$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)))
if ! (( (capeff >> 21) & 1 )) && ! (( (capeff >> 38) & (capeff >> 39) & 1 )); then
	skip "needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN) to load BPF programs"
fi

# ---- build ----

cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$2/CMakeCache.txt" 2>/dev/null; }

usable_build() {
	[ -f "$1/CMakeCache.txt" ] && [ "$(cache_value CMAKE_BUILD_TYPE "$1")" = Release ] &&
		! [[ "$(cache_value SANITIZE "$1")" =~ ^(ON|1|TRUE|YES|on|true|yes)$ ]]
}

if ! usable_build "$BUILD"; then
	if [ -f "$BUILD/CMakeCache.txt" ]; then
		echo "tracepoint bench: $BUILD is not a Release build without SANITIZE; using $SRC/build-bench" >&2
		BUILD=$SRC/build-bench
	fi
	if ! usable_build "$BUILD"; then
		[ -f "$BUILD/CMakeCache.txt" ] && die "$BUILD exists and is not a Release build without SANITIZE"
		cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSANITIZE=OFF >/dev/null
	fi
fi
cmake --build "$BUILD" -j2 --target bench-tracepoint >/dev/null ||
	die "build failed (cmake --build $BUILD --target bench-tracepoint)"

[ -z "${ALT_COLLECTOR:-}" ] || [ -x "$ALT_COLLECTOR" ] || die "ALT_COLLECTOR $ALT_COLLECTOR is not an executable"
FIRE=$BUILD/bench/tracepoint/tp-bench-fire
EMPTY=$BUILD/bench/tracepoint/tp-bench-empty
DRAIN=$BUILD/bench/tracepoint/tp-bench-drain
COLLECTOR=$BUILD/collector/ebpf-collector
OUT=${OUT:-$BUILD/bench/tracepoint/results}
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW=$OUT/tracepoint-$STAMP.tsv
TABLE=$OUT/tracepoint-$STAMP.txt
PROF=$OUT/tracepoint-$STAMP.profile.tsv
TMP=$(mktemp -d /tmp/tp-bench.XXXXXX)
QDIR=/dev/shm/tp-bench-queue.$$

# ---- processes we started (stopped by pid, never by name) ----

EPID= CPID= DPID=
stop_pid() { # pid signal
	[ -n "$1" ] || return 0
	kill -CONT "$1" 2>/dev/null || true
	kill "-$2" "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}
cleanup() {
	stop_pid "$EPID" TERM
	stop_pid "$CPID" TERM
	stop_pid "$DPID" TERM
	rm -rf "$TMP" "$QDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(nproc)" -lt 2 ]; then
	echo "tracepoint bench: one CPU: not pinning (the collector shares the traced thread's CPU)" >&2
	PIN_FIRE=()
	PIN_HELPER=()
else
	# taskset execs the program: $! of "taskset ... &" is the program itself
	PIN_FIRE=(taskset -c "$FIRE_CPU")
	PIN_HELPER=(taskset -c "$HELPER_CPU")
fi

wait_ready() { # pid what
	for _ in $(seq 300); do
		[ -f "$TMP/ready" ] && return 0
		kill -0 "$1" 2>/dev/null || return 1
		sleep 0.02
	done
	return 1
}

start_empty() { # [extra options]; PROBES: the probes (default both)
	rm -f "$TMP/ready"
	# shellcheck disable=SC2086 # PROBES is a list
	"${PIN_HELPER[@]}" "$EMPTY" --ready-file "$TMP/ready" "$@" "$FIRE" \
		${PROBES:-mempool:added net:inbound_message} 2>"$TMP/empty.err" &
	EPID=$!
	wait_ready $EPID || { cat "$TMP/empty.err" >&2; die "tp-bench-empty did not attach"; }
}
stop_empty() { stop_pid "$EPID" TERM; EPID=; }

start_ours() { # [collector options]
	rm -f "$TMP/ready"
	rm -rf "$QDIR"
	"${PIN_HELPER[@]}" "${USE_COLLECTOR:-$COLLECTOR}" -b "$FIRE" --queue "$QDIR" --ready-file "$TMP/ready" -l warn "$@" \
		2>"$TMP/collector.err" &
	CPID=$!
	"${PIN_HELPER[@]}" "$DRAIN" ${DRAIN_OPTS:-} "$QDIR" >"$TMP/drain.out" 2>"$TMP/drain.err" &
	DPID=$!
	wait_ready $CPID || { cat "$TMP/collector.err" >&2; die "ebpf-collector did not attach"; }
}
# Stops the collector (it drains its rings and writes its final stats), then
# the reader; leaves the reader's summary line in $DRAINED.
stop_ours() {
	stop_pid "$CPID" TERM
	CPID=
	stop_pid "$DPID" TERM
	DPID=
	DRAINED=$(cat "$TMP/drain.out")
	[ -n "$DRAINED" ] || { cat "$TMP/drain.err" "$TMP/collector.err" >&2; die "tp-bench-drain printed nothing"; }
	rm -rf "$QDIR"
}

field() { # key line
	local v
	v=$(printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p")
	echo "${v:-NA}"
}

# ---- privileges: can a BPF program really be attached? ----

rm -f "$TMP/ready"
"$EMPTY" --ready-file "$TMP/ready" "$FIRE" mempool:added >"$TMP/probe.out" 2>&1 </dev/null &
EPID=$!
if wait_ready $EPID; then
	stop_empty
else
	stop_empty
	skip "cannot attach a BPF program ($(head -1 "$TMP/probe.out")); run as root"
fi

# ---- one measurement ----

# measure RUN WORKLOAD CONDITION: appends one line to $RAW.
measure() {
	local run=$1 w=$2 cond=$3 spec label args metric size fire_out delivered=NA lost=NA bad=NA
	spec=$(workload_spec "$w")
	IFS='|' read -r label args metric size <<<"$spec"
	case $cond in
	none)
		fire_out=$("${PIN_FIRE[@]}" "$FIRE" --expect-attached no $args) ;;
	empty)
		start_empty
		fire_out=$("${PIN_FIRE[@]}" "$FIRE" --expect-attached yes $args)
		stop_empty ;;
	floor)
		# 32 MiB of ring: 380,000 records, more than a measurement fires
		PROBES=mempool:added start_empty --program bench_floor_mempool_added --ring-pages 8192
		fire_out=$("${PIN_FIRE[@]}" "$FIRE" --expect-attached yes $args)
		stop_empty ;;
	ours)
		start_ours
		fire_out=$("${PIN_FIRE[@]}" "$FIRE" --expect-attached yes $args)
		stop_ours ;;
	alt)
		USE_COLLECTOR=$ALT_COLLECTOR start_ours
		fire_out=$("${PIN_FIRE[@]}" "$FIRE" --expect-attached yes $args)
		stop_ours ;;
	paused | altpaused)
		# big enough rings that nothing is dropped while nobody consumes
		USE_COLLECTOR=$([ "$cond" = paused ] && echo "$COLLECTOR" || echo "$ALT_COLLECTOR") \
			start_ours --ring-pages mempool=8192 --ring-pages p2pmsg=32768
		sleep 0.1
		kill -STOP "$CPID"
		fire_out=$("${PIN_FIRE[@]}" "$FIRE" --expect-attached yes $args)
		kill -CONT "$CPID"
		stop_ours ;;
	esac
	if [ "$cond" != none ] && [ "$cond" != empty ] && [ "$cond" != floor ]; then
		delivered=$(field events "$DRAINED")
		lost=$(field stats_lost "$DRAINED")
		bad=$(field bad "$DRAINED")
		if [ "$delivered" != "$(field fired "$fire_out")" ] || [ "$lost" != 0 ] || [ "$bad" != 0 ] ||
			[ "$(field lost "$DRAINED")" != 0 ] || [ "$(field started "$DRAINED")" != 1 ]; then
			echo "tracepoint bench: WARNING: $w/$cond run $run: fired $(field fired "$fire_out"), reader: $DRAINED" >&2
		fi
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$w" "$cond" "$metric" \
		"$(field wall_ns "$fire_out")" "$(field cpu_ns "$fire_out")" "$(field fired "$fire_out")" \
		"$delivered" "$lost" "$bad" "$size" "$(field outliers "$fire_out")" \
		"$(field cycles "$fire_out")" "$(field instructions "$fire_out")" >>"$RAW"
}

conditions_for() { # workload: conditions measured for it
	local conds="none empty ours${ALT_COLLECTOR:+ alt}" spec size args count
	[[ $(workload_spec "$1") == *"|"*mempool_added* ]] && conds="$conds floor"
	if [ "$DIAG" = 1 ]; then
		spec=$(workload_spec "$1")
		IFS='|' read -r _ args _ size <<<"$spec"
		count=${args##* }
		# paused needs every event of the measurement (+10% warm-up) in the ring
		local per ring=$((8192 * 4096))
		case $args in *p2p:*) per=$(ring_bytes_per_event "$size"); ring=$((32768 * 4096)) ;;
		*) per=88 ;; esac
		[ $((count * 11 / 10 * per)) -lt "$ring" ] && conds="$conds paused${ALT_COLLECTOR:+ altpaused}"
	fi
	if [ -n "${CONDITIONS:-}" ]; then
		local c keep=""
		for c in $conds; do [[ " $CONDITIONS " == *" $c "* ]] && keep="$keep $c"; done
		conds=$keep
	fi
	echo "$conds"
}

# ---- the runs ----

KERNEL=$(uname -r)
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
HYPER=$(grep -qw hypervisor /proc/cpuinfo && echo ", virtualized" || true)
{
	echo "# tracepoint cost, $(date -u '+%Y-%m-%d %H:%M UTC'), kernel $KERNEL, $CPU_MODEL ($(nproc) CPUs$HYPER)"
	echo "# git $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$SRC" diff --quiet -- bpf collector common 2>/dev/null || echo ' (modified)'), runs $RUNS, fire cpu $FIRE_CPU, helper cpu $HELPER_CPU, load $(cut -d' ' -f1-3 /proc/loadavg)"
	printf 'run\tworkload\tcondition\tmetric\twall_ns\tcpu_ns\tfired\tdelivered\tlost\tbad\tpayload\toutliers\tcycles\tinstructions\n'
} >"$RAW"

echo "tracepoint bench: $RUNS runs of: $WORKLOADS (raw: $RAW)" >&2
for run in $(seq 1 "$RUNS"); do
	for w in $WORKLOADS; do
		read -r -a conds <<<"$(conditions_for "$w")"
		n=${#conds[@]}
		for i in $(seq 0 $((n - 1))); do
			measure "$run" "$w" "${conds[$(((i + run - 1) % n))]}"
		done
	done
	echo "tracepoint bench: run $run/$RUNS done" >&2
done

# ---- profiling pass: BPF run time per event (kernel bpf_stats) ----

: >"$PROF"
prog_stats() { # pid: "run_cnt run_time_ns" summed over its BPF programs that ran
	local cnt=0 ns=0 c t f
	for f in /proc/"$1"/fdinfo/*; do
		c=$(sed -n 's/^run_cnt:[[:space:]]*//p' "$f" 2>/dev/null)
		t=$(sed -n 's/^run_time_ns:[[:space:]]*//p' "$f" 2>/dev/null)
		[ -n "$c" ] && [ -n "$t" ] || continue
		cnt=$((cnt + c)); ns=$((ns + t))
	done
	echo "$cnt $ns"
}
if [ "$PROFILE" = 1 ]; then
	for w in $WORKLOADS; do
		IFS='|' read -r label args metric size <<<"$(workload_spec "$w")"
		start_empty --bpf-stats
		"${PIN_FIRE[@]}" "$FIRE" --expect-attached yes $args >/dev/null
		read -r c t <<<"$(prog_stats "$EPID")"
		stop_empty
		printf '%s\tempty\t%s\t%s\n' "$w" "$c" "$t" >>"$PROF"
		DRAIN_OPTS=--bpf-stats start_ours
		"${PIN_FIRE[@]}" "$FIRE" --expect-attached yes $args >/dev/null
		read -r c t <<<"$(prog_stats "$CPID")"
		stop_ours
		printf '%s\tours\t%s\t%s\n' "$w" "$c" "$t" >>"$PROF"
	done
fi

# ---- the table ----

print_table "$RAW" "$PROF" | tee "$TABLE"
echo "(raw measurements: $RAW; profiling pass: $PROF; this table: $TABLE)"
