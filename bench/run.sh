#!/bin/sh
# Benchmarks (not tests): builds a Release build in build-bench if needed and
# runs one or more sections.
#
#   bench/run.sh              every section
#   bench/run.sh queue        only the queue section
#
# Environment:
#   BUILD_DIR          build directory (default: <repo>/build-bench)
#   QUEUE_BENCH_ARGS   extra arguments for queue_bench (see queue_bench --help),
#                      e.g. "--runs 9 --size 64 --size 512 --batch 256"
#
# Each section is a function section_<name> and is listed in SECTIONS.
# A section builds only the targets it runs, so a section does not depend
# on the rest of the tree building.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
jobs=$(nproc 2>/dev/null || echo 2)

# configure (Release), then build the given targets
build_targets() {
	# configure every time: cheap, and a new target is known before make runs
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSANITIZE=OFF >/dev/null
	cmake --build "$build" -j"$jobs" --target "$@" >/dev/null
}

# ---- section: queue ------------------------------------------------------
# Shared-memory queue throughput between two processes (bench/queue_bench.c):
# 64-byte and 4 KiB records, several runs, min/median/max records/s and MB/s.
# Goal: >= 10 million 64-byte records/s on a 2-core machine.
section_queue() {
	echo "== queue: shared-memory queue throughput (bench/queue_bench.c) =="
	build_targets queue_bench
	# shellcheck disable=SC2086
	"$build/bench/queue_bench" ${QUEUE_BENCH_ARGS:-}
	echo
}

# ---- section: tracepoint -------------------------------------------------
# What a tracepoint costs the traced thread with ebpf-collector attached,
# against an empty BPF program on the same probe, in the same run
# (bench/tracepoint/run.sh; needs root for eBPF; RUNS=N for more runs).
# Goal: at most 1.3x.
section_tracepoint() {
	echo "== tracepoint: cost to the traced thread (bench/tracepoint) =="
	"$root/bench/tracepoint/run.sh" "$build"
	echo
}

# ---- section: e2e --------------------------------------------------------
# End-to-end events/s from the traced program to a NATS subscriber with
# nothing lost (bench/e2e/run.sh; needs root for eBPF and nats-server):
# mempool:added and P2P messages of 100 B, 10 KB and 1 MB; the highest
# lossless rate, and CPU us/event of collector and publisher (RUNS=N,
# BUDGET=seconds of rate search per workload, WORKLOADS="...").
# Goal: >= 500,000 small events/s end to end with nothing lost.
section_e2e() {
	echo "== e2e: end-to-end throughput to a NATS subscriber (bench/e2e) =="
	"$root/bench/e2e/run.sh" "$build"
	echo
}

# ---- section: decode ------------------------------------------------------
# The P2P decoder's speed (bench/decode/decode_bench.c): a 4,000,000-byte
# block message and a stream of typical small messages, MB/s and messages/s.
section_decode() {
	echo "== decode: P2P message decoder (bench/decode/decode_bench.c) =="
	build_targets decode_bench
	"$build/bench/decode/decode_bench" 2
	echo
}

SECTIONS="queue tracepoint e2e decode"

requested=${*:-$SECTIONS}
for s in $requested; do
	case " $SECTIONS " in
	*" $s "*) "section_$s" ;;
	*)
		echo "run.sh: unknown section '$s' (sections: $SECTIONS)" >&2
		exit 2
		;;
	esac
done
