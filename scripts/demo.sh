#!/bin/sh
# The demo, in one command (as root, Debian bookworm): installs what is
# needed, builds, and runs nats-server on loopback, the test tracee standing
# in for bitcoind, ebpf-extractor (collector + publisher) and ebpf-sub
# printing live events as JSON until Ctrl-C.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)

./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >&2

work=$(mktemp -d /tmp/ebpf-demo-XXXXXX)
chmod 755 "$work" # the collector's own user reads the "bitcoind" binary here
queue=/dev/shm/ebpf-demo-$$
pids=""

cleanup() {
	trap - EXIT INT TERM
	for pid in $pids; do kill "$pid" 2>/dev/null || true; done
	for pid in $pids; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$work" "$queue"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# A free loopback port for nats-server, which must accept block-sized
# messages (a 4,000,000-byte payload plus its keys).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/nats.conf" <<EOF
listen: 127.0.0.1:$port
max_payload: 5242880
EOF
nats-server -c "$work/nats.conf" >"$work/nats.log" 2>&1 &
pids="$pids $!"

# Wait until the server accepts connections (with a deadline).
python3 - "$port" <<'EOF'
import socket, sys, time
deadline = time.time() + 15
while True:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("demo: nats-server did not start; see its log")
        time.sleep(0.05)
EOF

# The test tracee is bitcoind as far as the extractor can tell.
cp "$root/build/tests/tracee/ebpf-tracee" "$work/bitcoind"
chmod 755 "$work/bitcoind"

"$root/build/launcher/ebpf-extractor" --bitcoind-path "$work/bitcoind" \
	--nats-address "127.0.0.1:$port" --queue "$queue" --node-name demo \
	--utxocache-tracepoints --ready-file "$work/ready" 2>"$work/extractor.log" &
pids="$pids $!"

python3 - "$work/ready" "$work/extractor.log" <<'EOF'
import os, sys, time
deadline = time.time() + 30
while not os.path.exists(sys.argv[1]):
    if time.time() > deadline:
        sys.stderr.write(open(sys.argv[2]).read())
        sys.exit("demo: ebpf-extractor did not get ready; its log is above")
    time.sleep(0.05)
EOF
grep ready "$work/extractor.log" >&2 || true

# bitcoind's stand-in fires a mix of tracepoints, 20 a second, until stopped.
"$work/bitcoind" load --rate 20 --count 0 \
	--mix 'mempool:added=4,p2p:120=3,p2p_out:60=2,mempool:removed=2,utxo=2,net:inbound_connection=1,validation:block_connected=1' \
	>/dev/null &
pids="$pids $!"

echo "demo: live events follow (Ctrl-C stops everything)" >&2
"$root/build/sub/ebpf-sub" --nats-address "127.0.0.1:$port" --subject --no-payload 'btc.>'
