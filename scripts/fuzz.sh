#!/bin/sh
# Fuzzes the P2P decoder (publisher/p2p_decode.c, through the encoder too)
# with libFuzzer, ASan and UBSan for DURATION seconds (default 60).
#   scripts/fuzz.sh [DURATION] [extra libFuzzer flags...]
# Builds tests/decode/fuzz_decode with clang in build-fuzz/ (override with
# FUZZ_BUILD_DIR), seeds the corpus from ../shared/reference/p2p-corpus
# (each seed: a type byte, a budget byte, the payload) and keeps what
# libFuzzer finds in build-fuzz/fuzz-corpus/. Exit status: 0 when no crash;
# a crash leaves crash-* in build-fuzz/ and fails.
set -eu
DURATION=${1:-60}
[ $# -gt 0 ] && shift
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
REF=${P2P_CORPUS:-$ROOT/tests/decode/corpus}

command -v clang >/dev/null || { echo "fuzz.sh: clang is needed (apt-get install clang)" >&2; exit 1; }
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_C_COMPILER=clang -DDECODE_FUZZ=ON -DSANITIZE=ON \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link" >/dev/null
cmake --build "$BUILD" --target fuzz_decode -j"$(nproc)" >/dev/null
FUZZER=$BUILD/tests/decode/fuzz_decode

CORPUS=$BUILD/fuzz-corpus
mkdir -p "$CORPUS"
if [ -d "$REF" ]; then
	# the type byte is the index of the message type in p2p_decode_types
	TYPES="version verack ping pong inv getdata notfound tx block headers getheaders getblocks addr addrv2 sendaddrv2 feefilter sendheaders sendcmpct cmpctblock getblocktxn blocktxn getaddr mempool wtxidrelay merkleblock filterload filteradd filterclear getcfilters cfilter getcfheaders cfheaders getcfcheckpt cfcheckpt sendtxrcncl"
	for f in "$REF"/*.bin; do
		t=$(basename "$f" .bin | cut -d- -f2)
		i=0
		for name in $TYPES; do
			[ "$name" = "$t" ] && break
			i=$((i + 1))
		done
		# big payloads (the 946 kB block) slow the fuzzer down: seeds up to 70 kB
		[ "$(stat -c %s "$f")" -gt 70000 ] && continue
		{ printf "\\$(printf %03o "$i")\\377"; cat "$f"; } > "$CORPUS/seed-$(basename "$f")"
	done
fi

cd "$BUILD"
ASAN_OPTIONS=detect_leaks=1 "$FUZZER" -max_total_time="$DURATION" -max_len=140000 \
	-timeout=10 -print_final_stats=1 "$@" "$CORPUS"
