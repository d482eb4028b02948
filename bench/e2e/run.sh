#!/bin/bash
# End-to-end throughput: events per second from the traced program to a NATS
# subscriber with nothing lost, and the CPU time the collector and the
# publisher spend per event. See docs/performance.md, "End-to-end throughput".
#
#   bench/e2e/run.sh [BUILD_DIR]
#   bench/e2e/run.sh --table RESULTS.tsv   (the table of an earlier run)
#
# The pipeline is the real one: ebpf-tracee (load mode) -> BPF -> ebpf-collector
# -> shm queue -> ebpf-publisher -> nats-server (loopback, max_payload 5 MiB)
# -> e2e-sub (bench/e2e/e2e_sub.c: counts messages, checks seq contiguity per
# stream_id). ebpf-sub listens on <prefix>.extractor.> for the loss records,
# the collector's final stats and the publisher's stats.
#
# A trial runs the tracee(s) at a fixed offered rate R for TRIAL_SECS seconds
# (count = R * TRIAL_SECS) and passes when
#   * e2e-sub got every seq of the stream from 1 to the last, no gap, no
#     duplicate, nothing dropped by the NATS client, every event fired;
#   * no extractor:loss record, and the collector's final collector_stats and
#     the publisher's publisher_stats count nothing lost (bpf_drops,
#     queue_drops, incomplete, refused_too_large, malformed);
#   * the pipeline kept up: the end-to-end rate, events / (arrival of the last
#     event at the subscriber - time_ns of the first event), is at least
#     KEEPUP (0.9) of R. Without this the 1 GiB queue would hide a pipeline
#     that is slower than R for a few seconds.
# The search doubles R from the workload's start rate until a trial fails,
# then bisects BISECT times, within BUDGET seconds per workload. The best
# passing rate is then measured RUNS times; the table gives min / median /
# max over those runs (a run that fails there is shown as such).
# CPU per event: utime+stime (/proc/PID/stat) of collector, publisher,
# nats-server and e2e-sub, from the tracees' start to the last event's
# arrival; the tracees' own CPU from /usr/bin/time; the machine's busy and
# steal time (/proc/stat) over the same interval.
# Baseline, in the same run: after each final run, e2e-pub (bench/e2e/
# e2e_pub.c, plain nats.c) publishes as many messages of the same size as
# fast as it can; the table gives e2e / NATS alone per run.
# Diagnostic (SPLIT=1, default): the publisher is stopped while the tracees
# fire unpaced (upstream: tracee + BPF + collector), then drains the queue
# (downstream: publisher + nats-server + subscriber).
#
# Needs root (eBPF). Environment:
#   RUNS=3 TRIAL_SECS=3 BUDGET=150 BISECT=3 KEEPUP=0.9
#   WORKLOADS="added p2p_100 p2p_10k p2p_1m"
#   TRACEES_added=2 ...  tracee processes of a workload (each fires R/N)
#   START_added=100000 ... start rate of the search
#   RATE_added=N ...     skip the search, measure at this rate
#   SPLIT=0              no diagnostic
#   OUT=DIR              results (default BUILD_DIR/bench/e2e/results)
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-$SRC/build-bench}
[ "$BUILD" != --table ] || BUILD=$SRC/build-bench
RUNS=${RUNS:-3}
TRIAL_SECS=${TRIAL_SECS:-3}
BUDGET=${BUDGET:-150}
BISECT=${BISECT:-3}
KEEPUP=${KEEPUP:-0.9}
ALL_WORKLOADS="added p2p_100 p2p_10k p2p_1m"
WORKLOADS=${WORKLOADS:-$ALL_WORKLOADS}

die() { echo "e2e bench: $*" >&2; exit 1; }
log() { echo "e2e bench: $*" >&2; }
# stop_pid, wait_file, start_nats, cpu_ticks, field, baseline, ...
. "$SRC/bench/e2e/lib.sh"

# label|--mix|payload bytes|default tracees|default start rate
workload_spec() {
	case $1 in
	added)   echo "mempool:added|mempool_added|0|2|100000" ;;
	p2p_100) echo "P2P 100 B|p2p:100|100|2|50000" ;;
	p2p_10k) echo "P2P 10 KB|p2p:10000|10000|1|10000" ;;
	p2p_1m)  echo "P2P 1 MB|p2p:1000000|1000000|1|200" ;;
	*) die "unknown workload '$1' (known: $ALL_WORKLOADS)" ;;
	esac
}

# ---- the table ----

print_table() { # raw file
	awk -v tck="$TCK" "$AWK_STATS"'
	/^#/ { print; next }
	$1 == "final" {
		delete f
		for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = substr($i, length(kv[1]) + 2) }
		w = f["workload"]
		if (!(w in seen)) { seen[w] = 1; order[++nw] = w }
		rate[w] = f["rate"]; tracees[w] = f["tracees"]; size[w] = f["payload"]
		runs[w]++; if (f["pass"] == 1) passed[w]++
		lossless[w] += (f["lost"] == 0) ? 1 : 0
		ev = f["events"]; if (ev <= 0) next
		add(w SUBSEP "e2e", f["e2e_rate"]); lastrate[w] = f["e2e_rate"]
		add(w SUBSEP "mb", f["e2e_rate"] * size[w] / 1e6)
		add(w SUBSEP "wire", f["sub_bytes"] / ev)
		add(w SUBSEP "tr", f["tracee_rate"])
		add(w SUBSEP "coll", f["coll_ticks"] / tck * 1e6 / ev)
		add(w SUBSEP "pub", f["pub_ticks"] / tck * 1e6 / ev)
		add(w SUBSEP "nats", f["nats_ticks"] / tck * 1e6 / ev)
		add(w SUBSEP "sub", f["sub_ticks"] / tck * 1e6 / ev)
		add(w SUBSEP "trc", f["tracee_cpu_s"] * 1e6 / ev)
		if (f["secs"] > 0) {
			add(w SUBSEP "mbusy", f["machine_busy_ticks"] / tck / f["secs"])
			add(w SUBSEP "ours", (f["coll_ticks"] + f["pub_ticks"] + f["nats_ticks"] + f["sub_ticks"]) / tck / f["secs"] + f["tracee_cpu_s"] / f["secs"])
			add(w SUBSEP "steal", f["steal_ticks"] / tck / f["secs"])
		}
	}
	$1 == "base" {
		delete f
		for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = substr($i, length(kv[1]) + 2) }
		w = f["workload"]; ev = f["events"]; if (ev <= 0) next
		bn[w]++
		add(w SUBSEP "brate", f["rate"])
		if (lastrate[w] > 0 && f["rate"] > 0) add(w SUBSEP "bratio", lastrate[w] / f["rate"])
		add(w SUBSEP "bpub", f["pub_cpu_s"] * 1e6 / ev)
		add(w SUBSEP "bnats", f["nats_ticks"] / tck * 1e6 / ev)
		add(w SUBSEP "bsub", f["sub_ticks"] / tck * 1e6 / ev)
		bsize[w] = f["size"]; if (f["missing"] != 0 || ev != f["count"]) blost[w]++
	}
	$1 == "split" {
		delete f
		for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = substr($i, length(kv[1]) + 2) }
		w = f["workload"]; ev = f["events"]; if (ev <= 0) next
		if (!(w in sseen)) { sseen[w] = 1; sorder[++ns] = w }
		scount[w] = f["count"]; slost[w] += (f["lost"] > 0); sruns[w]++
		add(w SUBSEP "up", f["up_rate"]); add(w SUBSEP "down", f["down_rate"])
		add(w SUBSEP "ucoll", f["up_coll_ticks"] / tck * 1e6 / ev)
		add(w SUBSEP "utr", f["tracee_cpu_s"] * 1e6 / ev)
		add(w SUBSEP "dpub", f["down_pub_ticks"] / tck * 1e6 / ev)
		add(w SUBSEP "dnats", f["down_nats_ticks"] / tck * 1e6 / ev)
		add(w SUBSEP "dsub", f["down_sub_ticks"] / tck * 1e6 / ev)
	}
	END {
		print ""
		print "max zero-loss rate end to end; per run: min / median / max over the final runs at that offered rate"
		print "(no loss: runs with every seq delivered and nothing counted lost; kept up: also e2e >= KEEPUP x offered)"
		printf "%-14s %-9s %-8s %-28s %-22s %-20s %-20s %s\n", "workload", "offered/s", "no loss/kept up", "e2e events/s", "e2e MB/s (payload)", "collector us/event", "publisher us/event", "tracee procs: achieved events/s"
		for (i = 1; i <= nw; i++) {
			w = order[i]
			printf "%-14s %-9s %-8s %-28s %-22s %-20s %-20s %s: %s\n", w, rate[w], lossless[w] + 0 "/" passed[w] + 0 "/" runs[w], stat(w SUBSEP "e2e", "%.0f"),
				(size[w] > 0 ? stat(w SUBSEP "mb", "%.1f") : "-"), stat(w SUBSEP "coll", "%.2f"), stat(w SUBSEP "pub", "%.2f"),
				tracees[w], stat(w SUBSEP "tr", "%.0f")
		}
		print ""
		print "CPU time of every process per event (us, min / median / max), and NATS message size"
		printf "%-14s %-22s %-22s %-22s %-22s %-16s %-20s %-20s %s\n", "workload", "traced threads", "nats-server", "e2e-sub", "sum of all five", "bytes/msg", "CPUs busy: machine", "CPUs: ours", "CPUs: steal"
		for (i = 1; i <= nw; i++) {
			w = order[i]; n = cnt[w SUBSEP "e2e"]
			for (j = 1; j <= n; j++) { tot[j] = v[w SUBSEP "trc", j] + v[w SUBSEP "coll", j] + v[w SUBSEP "pub", j] + v[w SUBSEP "nats", j] + v[w SUBSEP "sub", j]; cnt[w SUBSEP "tot"] = n; v[w SUBSEP "tot", j] = tot[j] }
			printf "%-14s %-22s %-22s %-22s %-22s %-16s %-20s %-20s %s\n", w, stat(w SUBSEP "trc", "%.2f"), stat(w SUBSEP "nats", "%.2f"), stat(w SUBSEP "sub", "%.2f"), stat(w SUBSEP "tot", "%.2f"), stat(w SUBSEP "wire", "%.0f"), stat(w SUBSEP "mbusy", "%.2f"), stat(w SUBSEP "ours", "%.2f"), stat(w SUBSEP "steal", "%.2f")
		}
		print ""
		print "baseline in the same run: the NATS path alone (e2e-pub, plain nats.c, as fast as it can -> nats-server -> e2e-sub),"
		print "same message size and count, right after each final run; ratio = e2e events/s of that run / NATS alone events/s"
		printf "%-14s %-10s %-28s %-22s %-20s %-20s %-20s %s\n", "workload", "bytes/msg", "NATS alone msgs/s", "e2e / NATS alone", "e2e-pub us/msg", "nats-server us/msg", "e2e-sub us/msg", "lost"
		for (i = 1; i <= nw; i++) {
			w = order[i]; if (!bn[w]) continue
			printf "%-14s %-10s %-28s %-22s %-20s %-20s %-20s %s\n", w, bsize[w], stat(w SUBSEP "brate", "%.0f"), stat(w SUBSEP "bratio", "%.2f"), stat(w SUBSEP "bpub", "%.2f"), stat(w SUBSEP "bnats", "%.2f"), stat(w SUBSEP "bsub", "%.2f"), blost[w] + 0 "/" bn[w] " runs"
		}
		if (!ns) exit
		print ""
		print "diagnostic: the two halves alone (publisher stopped while the tracees fire at --rate 0, then it drains the queue)"
		printf "%-14s %-8s %-24s %-20s %-20s %-24s %-20s %-20s %-20s %s\n", "workload", "events", "upstream events/s", "tracee us/event", "collector us/event", "downstream events/s", "publisher us/event", "nats-server us/ev", "e2e-sub us/event", "runs with loss"
		for (i = 1; i <= ns; i++) {
			w = sorder[i]
			printf "%-14s %-8s %-24s %-20s %-20s %-24s %-20s %-20s %-20s %s\n", w, scount[w], stat(w SUBSEP "up", "%.0f"), stat(w SUBSEP "utr", "%.2f"), stat(w SUBSEP "ucoll", "%.2f"),
				stat(w SUBSEP "down", "%.0f"), stat(w SUBSEP "dpub", "%.2f"), stat(w SUBSEP "dnats", "%.2f"), stat(w SUBSEP "dsub", "%.2f"), slost[w] + 0 "/" sruns[w]
		}
	}' "$1"
}

TCK=$(getconf CLK_TCK)
if [ "${1:-}" = --table ]; then
	[ -f "${2:-}" ] || die "usage: run.sh --table RESULTS.tsv"
	print_table "$2"
	exit 0
fi

# ---- privileges and build ----

capeff=$((16#$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)))
if ! (( (capeff >> 21) & 1 )); then
	[ "${REQUIRE_BPF:-0}" = 1 ] && die "needs root"
	echo "SKIP: e2e bench: needs root (eBPF)" >&2
	exit 77
fi
command -v nats-server >/dev/null || die "nats-server not found (scripts/install-deps.sh installs it)"
command -v jq >/dev/null || die "jq not found"

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
	cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSANITIZE=OFF >/dev/null
fi
grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$BUILD/CMakeCache.txt" || die "$BUILD is not a Release build"
cmake --build "$BUILD" -j"$(nproc)" --target bench-e2e ebpf-sub >/dev/null ||
	die "build failed (cmake --build $BUILD --target bench-e2e ebpf-sub)"

TRACEE=$BUILD/tests/tracee/ebpf-tracee
COLLECTOR=$BUILD/collector/ebpf-collector
PUBLISHER=$BUILD/publisher/ebpf-publisher
ESUB=$BUILD/bench/e2e/e2e-sub
EPUB=$BUILD/bench/e2e/e2e-pub
JSUB=$BUILD/sub/ebpf-sub
OUT=${OUT:-$BUILD/bench/e2e/results}
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW=$OUT/e2e-$STAMP.tsv
TABLE=$OUT/e2e-$STAMP.txt
TMP=$(mktemp -d /tmp/e2e-bench.XXXXXX)
QDIR=/dev/shm/e2e-bench-queue.$$
PREFIX=bench.e2e

# ---- processes we started (stopped by pid, never by name) ----

NPID= SPID= JPID= CPID= PPID_= TPIDS=()
stop_pipeline() {
	local p
	for p in "${TPIDS[@]}"; do stop_pid "$p" TERM; done
	TPIDS=()
	stop_pid "$CPID" TERM; CPID=
	stop_pid "$PPID_" TERM; PPID_=
	stop_pid "$JPID" TERM; JPID=
	stop_pid "$SPID" TERM; SPID=
	rm -rf "$QDIR"
}
cleanup() {
	stop_pipeline
	stop_pid "$NPID" TERM
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_nats

# ---- one trial ----

# reasons a trial failed that are a loss (not "slow", "tracee_limited", "dups")
lost_reasons() { # why
	printf '%s\n' $1 | grep -cv -e '^slow:' -e '^tracee_limited:' -e '^dups:' -e '^$' || true
}

# trial WORKLOAD RATE [split]: runs the pipeline once; leaves one result
# line (key=value) in $LINE; returns 0 when it passed.
# split: the diagnostic. The publisher is stopped (SIGSTOP) while the
# tracee(s) fire COUNT=RATE*TRIAL_SECS events as fast as they can (--rate 0)
# into the queue: the upstream half (traced threads + BPF + collector) alone.
# Then the publisher continues and drains the full queue: the downstream half
# (publisher + nats-server + subscriber) alone, with both CPUs to itself.
trial() {
	local w=$1 rate=$2 split=${3:-} label mix size ntr start
	IFS='|' read -r label mix size ntr start <<<"$(workload_spec "$w")"
	local var="TRACEES_$w"
	ntr=${!var:-$ntr}
	local count=$(( rate * TRIAL_SECS ))
	[ "$count" -ge 10 ] || count=10
	local per=$(( (count + ntr - 1) / ntr )) i
	count=$(( per * ntr ))

	rm -rf "$QDIR" "$TMP"/t.*
	"$JSUB" -n "127.0.0.1:$PORT" "$PREFIX.extractor.>" >"$TMP/t.extractor.json" 2>"$TMP/t.jsub.err" &
	JPID=$!
	start_esub
	"$COLLECTOR" -b "$TRACEE" --queue "$QDIR" --queue-size 1G --ring-pages mempool=16384 \
		--ring-pages p2pmsg=65536 --stats-interval 3600 --ready-file "$TMP/t.cready" -l warn \
		2>"$TMP/t.collector.err" &
	CPID=$!
	wait_file "$TMP/t.cready" $CPID 30 || { cat "$TMP/t.collector.err" >&2; die "ebpf-collector did not attach"; }
	"$PUBLISHER" --queue "$QDIR" -n "127.0.0.1:$PORT" --subject-prefix "$PREFIX" --node-name bench \
		--stats-interval 1 --ready-file "$TMP/t.pready" -l warn 2>"$TMP/t.publisher.err" &
	PPID_=$!
	wait_file "$TMP/t.pready" $PPID_ 30 || { cat "$TMP/t.publisher.err" >&2; die "ebpf-publisher did not start"; }
	# e2e-sub has seen extractor:started (seq 1): the subscription is live
	for _ in $(seq 250); do
		[ "$(field msgs "$(cat "$TMP/t.status")")" -ge 1 ] && break
		sleep 0.02
	done

	local c0 p0 n0 s0 t0 c1 p1 n1 s1 t1 cm=0 pm=0 nm=0 sm=0 tm=0 trate=$(( rate / ntr ))
	[ -z "$split" ] || { kill -STOP $PPID_; trate=0; }
	c0=$(cpu_ticks $CPID); p0=$(cpu_ticks $PPID_); n0=$(cpu_ticks $NPID); s0=$(cpu_ticks $SPID)
	local mb0 ms0 mb1 ms1
	read -r mb0 ms0 <<<"$(machine_ticks)"
	t0=$(date +%s%N)
	for i in $(seq "$ntr"); do
		/usr/bin/time -f "tracee_cpu=%U+%S" -o "$TMP/t.tracee$i.time" \
			"$TRACEE" --wait-attached load --mix "$mix" --rate "$trate" --count "$per" \
			>/dev/null 2>"$TMP/t.tracee$i.err" &
		TPIDS+=($!)
	done
	for i in "${TPIDS[@]}"; do wait "$i" || true; done
	TPIDS=()
	if [ -n "$split" ]; then
		sleep 0.05 # the collector polls its rings every 10 ms
		cm=$(cpu_ticks $CPID); pm=$(cpu_ticks $PPID_); nm=$(cpu_ticks $NPID); sm=$(cpu_ticks $SPID)
		tm=$(date +%s%N)
		kill -CONT $PPID_
	fi
	local st
	wait_events "$count"
	t1=$(date +%s%N)
	c1=$(cpu_ticks $CPID); p1=$(cpu_ticks $PPID_); n1=$(cpu_ticks $NPID); s1=$(cpu_ticks $SPID)
	read -r mb1 ms1 <<<"$(machine_ticks)"

	# the collector's final stats, then the publisher's last stats
	stop_pid "$CPID" TERM; CPID=
	for _ in $(seq 250); do
		grep -q '"extractor:collector_stats"' "$TMP/t.extractor.json" 2>/dev/null && break
		sleep 0.02
	done
	sleep 1.2 # one more publisher_stats (--stats-interval 1)
	stop_pid "$PPID_" TERM; PPID_=
	stop_pid "$JPID" TERM; JPID=
	stop_pid "$SPID" TERM; SPID=
	rm -rf "$QDIR"
	st=$(cat "$TMP/t.status")

	# losses reported by the extractor
	local lossrec closs refused malformed tr_rate tr_cpu=0 tr_ach
	lossrec=$(jq -s '[.[] | select(.event == "extractor:loss") | .lost_total] | add // 0' "$TMP/t.extractor.json")
	closs=$(jq -s '[.[] | select(.event == "extractor:collector_stats") | .tracepoints[] |
		(.bpf_drops + .queue_drops + .incomplete)] | add // "none"' "$TMP/t.extractor.json")
	refused=$(jq -s '[.[] | select(.event == "extractor:publisher_stats") | .refused_too_large] | max // "none"' "$TMP/t.extractor.json")
	malformed=$(jq -s '[.[] | select(.event == "extractor:publisher_stats") | .malformed] | max // "none"' "$TMP/t.extractor.json")
	# the traced threads: achieved rate (sum over processes) and CPU
	tr_ach=0
	for i in $(seq "$ntr"); do
		tr_rate=$(sed -n 's/.*(\([0-9]*\)\/s).*/\1/p' "$TMP/t.tracee$i.err" | tail -1)
		tr_ach=$((tr_ach + ${tr_rate:-0}))
		tr_cpu=$(awk -v a="$tr_cpu" -F= '/tracee_cpu/ { split($2, x, "+"); print a + x[1] + x[2] }' "$TMP/t.tracee$i.time")
	done

	local ev_got gaps missing dups dropped first_seq last_seq ft lr e2e secs pass=1 why=""
	ev_got=$(field events "$st"); gaps=$(field gaps "$st"); missing=$(field missing "$st")
	dups=$(field dups "$st"); dropped=$(field dropped "$st"); first_seq=$(field first_seq "$st")
	last_seq=$(field last_seq "$st"); ft=$(field first_time_ns "$st"); lr=$(field last_recv_ns "$st")
	e2e=$(rate_of "$ev_got" "$ft" "$lr")
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
	[ "$ev_got" = "$count" ] || { pass=0; why="$why events:$ev_got/$count"; }
	[ "$gaps" = 0 ] && [ "$missing" = 0 ] || { pass=0; why="$why gap:$missing"; }
	[ "$first_seq" = 1 ] || { pass=0; why="$why first_seq:$first_seq"; }
	[ "$dups" = 0 ] || why="$why dups:$dups"
	[ "$dropped" = 0 ] || { pass=0; why="$why client_dropped:$dropped"; }
	[ "$(field bad "$st")" = 0 ] || { pass=0; why="$why bad:$(field bad "$st")"; }
	[ "$lossrec" = 0 ] || { pass=0; why="$why loss_records:$lossrec"; }
	[ "$closs" = 0 ] || { pass=0; why="$why collector_lost:$closs"; }
	[ "$refused" = 0 ] || { pass=0; why="$why refused:$refused"; }
	[ "$malformed" = 0 ] || { pass=0; why="$why malformed:$malformed"; }
	awk -v e="$e2e" -v r="$rate" -v k="$KEEPUP" 'BEGIN { exit !(e >= k * r) }' ||
		{ pass=0; why="$why slow:e2e_${e2e}/s"; }
	awk -v e="$tr_ach" -v r="$rate" -v k="$KEEPUP" 'BEGIN { exit !(e >= k * r) }' ||
		why="$why tracee_limited:${tr_ach}/s"
	if [ -n "$split" ]; then
		LINE=$(printf 'workload=%s count=%s tracees=%s events=%s up_rate=%s down_rate=%s up_coll_ticks=%s up_pub_ticks=%s up_nats_ticks=%s up_sub_ticks=%s down_coll_ticks=%s down_pub_ticks=%s down_nats_ticks=%s down_sub_ticks=%s tracee_cpu_s=%s lost=%s why=%s' \
			"$w" "$count" "$ntr" "$ev_got" "$tr_ach" \
			"$(rate_of "$ev_got" "$tm" "$lr")" \
			$((cm - c0)) $((pm - p0)) $((nm - n0)) $((sm - s0)) $((c1 - cm)) $((p1 - pm)) $((n1 - nm)) $((s1 - sm)) \
			"$tr_cpu" "$(lost_reasons "$why")" "${why# }")
		return 0
	fi
	LINE=$(printf 'workload=%s rate=%s tracees=%s count=%s pass=%s lost=%s events=%s last_seq=%s e2e_rate=%s tracee_rate=%s payload=%s secs=%s coll_ticks=%s pub_ticks=%s nats_ticks=%s sub_ticks=%s tracee_cpu_s=%s sub_bytes=%s machine_busy_ticks=%s steal_ticks=%s why=%s\n' \
		"$w" "$rate" "$ntr" "$count" "$pass" "$(lost_reasons "$why")" "$ev_got" "$last_seq" "$e2e" "$tr_ach" "$size" "$secs" \
		$((c1 - c0)) $((p1 - p0)) $((n1 - n0)) $((s1 - s0)) "$tr_cpu" "$(field bytes "$st")" $((mb1 - mb0)) $((ms1 - ms0)) "${why# }")
	[ $pass = 1 ]
}

# ---- search and measure ----

{
	echo "# e2e throughput, $(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# git $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$SRC" diff --quiet 2>/dev/null || echo ' (modified)'), runs $RUNS, trial ${TRIAL_SECS}s, keepup $KEEPUP, CLK_TCK $TCK"
} >"$RAW"

for w in $WORKLOADS; do
	IFS='|' read -r label mix size ntr start <<<"$(workload_spec "$w")"
	var="START_$w"; start=${!var:-$start}
	var="RATE_$w"; fixed=${!var:-}
	best=0
	if [ -n "$fixed" ]; then
		best=$fixed
	else
		t_end=$(( $(date +%s) + BUDGET ))
		lo=0 hi=0 r=$start
		while [ "$(date +%s)" -lt "$t_end" ]; do
			if trial "$w" "$r"; then ok=1; else ok=0; fi
			line=$LINE
			echo "search $line" >>"$RAW"
			log "$w: rate $r: $([ $ok = 1 ] && echo pass || echo "FAIL ($(field why "$line"))"), e2e $(field e2e_rate "$line")/s, tracee $(field tracee_rate "$line")/s"
			if [ $ok = 1 ]; then lo=$r; else hi=$r; fi
			if [ "$hi" = 0 ]; then r=$((r * 2)); continue; fi
			if [ "$lo" = 0 ]; then r=$((r / 2)); [ "$r" -ge 1 ] || break; continue; fi
			[ $((hi - lo)) -le $((lo / (1 << BISECT))) ] && break
			r=$(( (lo + hi) / 2 ))
		done
		best=$lo
	fi
	[ "$best" -gt 0 ] || { log "$w: no passing rate found"; continue; }
	for run in $(seq "$RUNS"); do
		trial "$w" "$best" || true
		line=$LINE
		echo "final $line" >>"$RAW"
		log "$w: run $run at $best/s: pass=$(field pass "$line") $(field why "$line") e2e $(field e2e_rate "$line")/s"
		# the baseline right after, same count, same message size
		wire=$(awk -v b="$(field sub_bytes "$line")" -v n="$(field events "$line")" 'BEGIN { printf "%d", (n > 0) ? b / n : 0 }')
		[ "$wire" -ge 64 ] || wire=64
		baseline "$(field count "$line")" "$wire"
		echo "base workload=$w $LINE" >>"$RAW"
		log "$w: run $run NATS alone ($wire B messages): $(field rate "$LINE")/s"
	done
	if [ "${SPLIT:-1}" = 1 ]; then
		for run in $(seq "$RUNS"); do
			trial "$w" "$best" split || true
			echo "split $LINE" >>"$RAW"
			log "$w: split run $run: upstream $(field up_rate "$LINE")/s, downstream $(field down_rate "$LINE")/s $(field why "$LINE")"
		done
	fi
done

echo "# nats-server: $(grep -ci 'slow consumer' "$TMP/nats.log" || true) slow-consumer reports in its log" >>"$RAW"
print_table "$RAW" | tee "$TABLE"
echo "(raw trials: $RAW; this table: $TABLE)"
