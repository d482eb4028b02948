#!/bin/sh
# Runs the real-kernel usdt test as uid nobody with exactly the given
# capabilities (comma list, e.g. "bpf,perfmon") as ambient, inheritable and
# bounding sets, the way users run the collector.
#   run_as_nobody.sh CAPS TEST_BINARY TRACEE TRACEE_EXEC [TEST ARGS...]
# Needs root to switch users: skips (77) otherwise, or fails with REQUIRE_BPF=1.
set -eu
caps=$1 test_bin=$2 tracee=$3 tracee_exec=$4
shift 4
if [ "$(id -u)" != 0 ]; then
	if [ "${REQUIRE_BPF:-0}" = 1 ]; then
		echo "FAIL: this test switches to uid nobody with setpriv and needs root (REQUIRE_BPF=1)" >&2
		exit 1
	fi
	echo "SKIPPED: this test switches to uid nobody with setpriv and needs root;" \
		"set REQUIRE_BPF=1 to make this a failure" >&2
	exit 77
fi
if ! command -v setpriv >/dev/null 2>&1; then
	echo "FAIL: setpriv (util-linux) not found" >&2
	exit 1
fi
# nobody must be able to read and run both programs: private copies in a
# world-readable directory.
dir=$(mktemp -d /tmp/usdt-nobody-XXXXXX)
trap 'rm -rf "$dir"' EXIT
cp "$test_bin" "$dir/test_usdt_kernel"
cp "$tracee" "$dir/usdt_tracee"
cp "$tracee_exec" "$dir/usdt_tracee_exec"
chmod 755 "$dir" "$dir/test_usdt_kernel" "$dir/usdt_tracee" "$dir/usdt_tracee_exec"
set=-all
for c in $(echo "$caps" | tr , ' '); do
	set="$set,+$c"
done
echo "running as nobody with capabilities $set" >&2
# no exec: the trap must remove the copies afterwards
rc=0
USDT_TRACEE="$dir/usdt_tracee" USDT_TRACEE_EXEC="$dir/usdt_tracee_exec" TMPDIR=/tmp setpriv --reuid=nobody --regid=nogroup --clear-groups \
	--inh-caps="$set" --ambient-caps="$set" --bounding-set="$set" \
	-- "$dir/test_usdt_kernel" "$@" || rc=$?
exit $rc
