#!/bin/sh
# Runs the tracee builds without a tracer attached: compute prints the
# known checksum in every build, the modes run and report, the control
# flags work, bad usage exits 2 with the usage line.
# usage: check-run.sh TRACEE NOWALLET SIB NOPROBES
set -eu

failures=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

tracee=$1 nowallet=$2 sib=$3 noprobes=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# compute: SCENARIO_COMPUTE_RESULT from scenario.h, in every build
want=$(sed -n 's/^#define SCENARIO_COMPUTE_RESULT UINT64_C(\(0x[0-9a-f]*\))$/\1/p' \
	"$(dirname "$0")/scenario.h")
for bin in "$tracee" "$nowallet" "$sib" "$noprobes"; do
	got=$("$bin" compute)
	[ "$got" = "compute $want" ] || fail "$bin compute: '$got', expected 'compute $want'"
done

# modes, nothing attached: every line says 0 fired
"$tracee" scenario >"$tmp/out" || fail "scenario exited $?"
[ "$(grep -c '^fired [a-z_]*:[a-z_]* 0$' "$tmp/out")" -eq 20 ] || fail "scenario output: $(cat "$tmp/out")"
"$nowallet" scenario >"$tmp/out" || fail "nowallet scenario exited $?"
[ "$(grep -c '^fired ' "$tmp/out")" -eq 16 ] || fail "nowallet scenario output: $(cat "$tmp/out")"
"$tracee" scenario --groups mempool,validation >"$tmp/out" || fail "scenario --groups exited $?"
[ "$(grep -c '^fired ' "$tmp/out")" -eq 5 ] || fail "scenario --groups output: $(cat "$tmp/out")"
"$tracee" load --mix 'mempool_added=3,p2p:1000=1' --count 1000 >"$tmp/out" 2>/dev/null ||
	fail "load exited $?"
[ "$(cat "$tmp/out")" = "fired net:inbound_message 0
fired mempool:added 0" ] || fail "load output: $(cat "$tmp/out")"
"$tracee" burst >"$tmp/out" 2>/dev/null || fail "burst exited $?"
[ "$(grep -c '^fired ' "$tmp/out")" -eq 4 ] || fail "burst output: $(cat "$tmp/out")"

# --pid-file and --wait-signal
"$tracee" --pid-file "$tmp/pid" --wait-signal --timeout 10 scenario >/dev/null &
child=$!
i=0
while [ ! -s "$tmp/pid" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
[ "$(cat "$tmp/pid" 2>/dev/null)" = "$child" ] || fail "pid file holds '$(cat "$tmp/pid" 2>/dev/null)', not $child"
kill -USR1 "$child"
wait "$child" || fail "--wait-signal run exited $?"

# --wait-attached with nobody attaching: exit 1 after the timeout
rc=0
"$tracee" --wait-attached --timeout 0.2 scenario >/dev/null 2>"$tmp/err" || rc=$?
[ $rc -eq 1 ] || fail "--wait-attached without tracer exited $rc"
grep -q 'timed out waiting for a tracer' "$tmp/err" || fail "--wait-attached message: $(cat "$tmp/err")"

# bad usage: exit 2 with the usage line
expect_usage() {
	rc=0
	"$@" >/dev/null 2>"$tmp/err" || rc=$?
	[ $rc -eq 2 ] || fail "'$*' exited $rc, expected 2"
	grep -q '^usage: ebpf-tracee' "$tmp/err" || fail "'$*' printed no usage line"
}
expect_usage "$tracee"
expect_usage "$tracee" --bogus scenario
expect_usage "$tracee" frobnicate
expect_usage "$tracee" load
expect_usage "$tracee" load --mix nosuch:probe
expect_usage "$tracee" load --mix mempool_added:100
expect_usage "$tracee" load --mix p2p:4000001
expect_usage "$tracee" load --mix mempool_added=0
expect_usage "$tracee" load --mix mempool_added --rate -1
expect_usage "$tracee" scenario --mix p2p
expect_usage "$tracee" scenario --groups nosuch
expect_usage "$tracee" scenario --timeout
expect_usage "$nowallet" load --mix coin_selection:attempting_aps_create_tx

[ "$failures" -eq 0 ] || exit 1
echo "tracee runs OK"
