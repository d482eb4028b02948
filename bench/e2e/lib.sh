# Shell helpers shared by bench/e2e/run.sh (the whole pipeline) and
# bench/e2e/drain.sh (the publisher alone draining a full queue). Sourced,
# not run. The caller defines die() and sets TMP (a scratch directory),
# ESUB and EPUB (e2e-sub and e2e-pub) and PREFIX (the subject prefix).

# stop a process we started (by pid, never by name)
stop_pid() { # pid signal
	[ -n "$1" ] || return 0
	kill "-$2" "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

wait_file() { # file pid seconds
	local i
	for i in $(seq $(($3 * 50))); do
		[ -s "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.02
	done
	return 1
}

# ---- nats-server on a free loopback port: sets NPID, PORT, URL ----

port_free() { ! ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

start_nats() {
	local p up=0
	PORT=
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 40000))
		if port_free "$p"; then PORT=$p; break; fi
	done
	[ -n "$PORT" ] || die "no free port"
	cat >"$TMP/nats.conf" <<-EOF
	listen: 127.0.0.1:$PORT
	max_payload: 5242880
	max_pending: 1073741824
	write_deadline: "30s"
	EOF
	nats-server -c "$TMP/nats.conf" >"$TMP/nats.log" 2>&1 &
	NPID=$!
	for _ in $(seq 250); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then up=1; break; fi
		kill -0 $NPID 2>/dev/null || break
		sleep 0.02
	done
	[ $up = 1 ] || { cat "$TMP/nats.log" >&2; die "nats-server did not start"; }
	URL=nats://127.0.0.1:$PORT
}

# ---- measuring ----

# CPU time of a process: utime+stime in clock ticks
cpu_ticks() { # pid
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
	s=${s##*) }
	# fields after "pid (comm) ": state is 1, utime 12, stime 13
	echo "$s" | awk '{ print $12 + $13 }'
}

# busy and steal jiffies of the whole machine (all CPUs, /proc/stat)
machine_ticks() {
	awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9, $9; exit }' /proc/stat
}

# awk functions for the result tables: add(key, x) collects a value,
# stat(key, fmt) prints "min / median / max" of those collected under key
AWK_STATS='
function med(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
function stat(key, fmtstr,   n, i, a, mn, mx) {
	n = cnt[key]; if (!n) return "-"
	for (i = 1; i <= n; i++) a[i] = v[key, i]
	mn = a[1]; mx = a[1]
	for (i = 2; i <= n; i++) { if (a[i] < mn) mn = a[i]; if (a[i] > mx) mx = a[i] }
	return sprintf(fmtstr " / " fmtstr " / " fmtstr, mn, med(a, n), mx)
}
function add(k, x) { cnt[k]++; v[k, cnt[k]] = x + 0 } # + 0: compare as numbers
'

field() { # key line
	local v
	v=$(printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | tail -1)
	echo "${v:-NA}"
}

# events per second: n events from time a to time b (ns)
rate_of() { # n a b
	awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", (b > a) ? n / ((b - a) / 1e9) : 0 }'
}

# start e2e-sub on PREFIX.> writing its status to $TMP/t.status: sets SPID
start_esub() {
	"$ESUB" --url "$URL" --subject "$PREFIX.>" --status "$TMP/t.status" 2>"$TMP/t.esub.err" &
	SPID=$!
	wait_file "$TMP/t.status" $SPID 10 || { cat "$TMP/t.esub.err" >&2; die "e2e-sub did not start"; }
}

# wait until e2e-sub counted `count` events, or nothing moved for 3 s
wait_events() { # count
	local ev last=-1 still=0
	while :; do
		ev=$(field events "$(cat "$TMP/t.status")")
		[ "$ev" -ge "$1" ] && break
		if [ "$ev" = "$last" ]; then still=$((still + 1)); else still=0; last=$ev; fi
		[ $still -ge 60 ] && break
		sleep 0.05
	done
}

# baseline COUNT SIZE: the NATS path alone, in the same run: e2e-pub (plain
# nats.c) publishes COUNT messages of SIZE bytes as fast as it can, e2e-sub
# counts them; leaves one result line in $LINE.
baseline() {
	local count=$1 size=$2 st n0 s0 n1 s1 ev lr ft pub_cpu
	rm -f "$TMP"/t.*
	start_esub
	sleep 0.1 # e2e-sub flushed its subscription before writing the status file
	n0=$(cpu_ticks $NPID); s0=$(cpu_ticks $SPID)
	/usr/bin/time -f "pub_cpu=%U+%S" -o "$TMP/t.pub.time" \
		"$EPUB" --url "$URL" --subject "$PREFIX.mempool.added" --count "$count" --size "$size" 2>"$TMP/t.pub.err" ||
		{ cat "$TMP/t.pub.err" >&2; }
	wait_events "$count"
	n1=$(cpu_ticks $NPID); s1=$(cpu_ticks $SPID)
	stop_pid "$SPID" TERM; SPID=
	st=$(cat "$TMP/t.status")
	ev=$(field events "$st"); ft=$(field first_time_ns "$st"); lr=$(field last_recv_ns "$st")
	pub_cpu=$(awk -F= '/pub_cpu/ { split($2, x, "+"); print x[1] + x[2] }' "$TMP/t.pub.time")
	LINE=$(printf 'count=%s size=%s events=%s missing=%s rate=%s pub_cpu_s=%s nats_ticks=%s sub_ticks=%s' \
		"$count" "$size" "$ev" "$(field missing "$st")" "$(rate_of "$ev" "$ft" "$lr")" \
		"${pub_cpu:-0}" $((n1 - n0)) $((s1 - s0)))
}
