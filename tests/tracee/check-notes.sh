#!/bin/sh
# Checks the USDT notes of the tracee builds (readelf -n):
#   ebpf-tracee           all 20 probes, Bitcoin Core's argument sizes, a
#                         semaphore inside .probes for each, argument specs
#                         of all three readable kinds (register,
#                         register+offset, constant) and none of the kinds
#                         the extractor refuses (SIB, symbol, %fs:)
#   ebpf-tracee-nowallet  the same without the 4 coin_selection probes
#   ebpf-tracee-sib       the same 20 with exactly one SIB spec, in mempool:added
#   ebpf-tracee-noprobes  no stapsdt note, no .probes section
# usage: check-notes.sh TRACEE NOWALLET SIB NOPROBES
set -eu

# Each probe with the size@ of its arguments in a real bitcoind's notes
# (negative: signed), i.e. Core's C types: int64 -8, uint64 and pointers 8,
# int32 -4, uint32 4, bool 1.
EXPECTED="net:inbound_message -8 8 8 8 8 8
net:outbound_message -8 8 8 8 8 8
net:inbound_connection -8 8 8 4 8
net:outbound_connection -8 8 8 4 8
net:closed_connection -8 8 8 4 -8
net:evicted_inbound_connection -8 8 8 4 -8
net:misbehaving_connection -8 8
validation:block_connected 8 -4 8 -4 -8 -8
utxocache:flush -8 4 8 8 1
utxocache:add 8 4 4 -8 1
utxocache:spent 8 4 4 -8 1
utxocache:uncache 8 4 4 -8 1
coin_selection:selected_coins 8 8 -8 -8 -8
coin_selection:normal_create_tx_internal 8 1 -8 -4
coin_selection:attempting_aps_create_tx 8
coin_selection:aps_create_tx_internal 8 1 1 -8 -4
mempool:added 8 -4 -8
mempool:removed 8 8 -4 -8 8
mempool:replaced 8 -4 -8 8 8 -4 -8 1
mempool:rejected 8 8"

failures=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# One line per probe: "provider:name semaphore arg arg ...", sorted.
probes() {
	readelf -n "$1" | awk '
		/Provider:/ { p = $2 }
		/Name:/ { n = $2 }
		/Semaphore:/ { s = $NF }
		/Arguments:/ { $1 = ""; print p ":" n " " s $0 }' | sort
}

# The .probes section as "start end" (hex without 0x), empty if none.
probes_section() {
	readelf -SW "$1" | awk '$2 == ".probes" { print $4, $6 }'
}

in_section() { # ADDR START SIZE
	[ $(($1)) -ge $((0x$2)) ] && [ $(($1)) -lt $((0x$2 + 0x$3)) ]
}

check_probes() { # BINARY EXPECTED-LIST
	bin=$1 expected=$2
	list=$(probes "$bin")
	section=$(probes_section "$bin")
	[ -n "$section" ] || fail "$bin: no .probes section"
	while read -r name sizes; do
		line=$(echo "$list" | awk -v n="$name" '$1 == n')
		if [ -z "$line" ]; then
			fail "$bin: probe $name missing"
			continue
		fi
		set -- $line
		sem=$2
		shift 2
		got=$(for spec in "$@"; do printf '%s ' "${spec%%@*}"; done)
		[ "$got" = "$sizes " ] || fail "$bin: $name argument sizes '$got', Core's '$sizes'"
		[ $((sem)) -ne 0 ] || fail "$bin: $name has no semaphore"
		[ -z "$section" ] || in_section "$sem" $section || fail "$bin: $name semaphore $sem outside .probes"
	done <<-END
	$expected
	END
	n=$(echo "$list" | grep -c . || true)
	want=$(echo "$expected" | grep -c .)
	[ "$n" -eq "$want" ] || fail "$bin: $n probes, expected $want"
}

specs() { # BINARY: every argument spec, one per line, as "probe spec"
	probes "$1" | awk '{ for (i = 3; i <= NF; i++) print $1, $i }'
}

tracee=$1 nowallet=$2 sib=$3 noprobes=$4

check_probes "$tracee" "$EXPECTED"
all=$(specs "$tracee")
echo "$all" | grep -qE ' -?[0-9]+@%[a-z0-9]+$' || fail "$tracee: no register argument"
echo "$all" | grep -qE ' -?[0-9]+@-?[0-9]*\(%[a-z0-9]+\)$' || fail "$tracee: no register+offset argument"
echo "$all" | grep -qE ' -?[0-9]+@\$-?[0-9]+$' || fail "$tracee: no constant argument"
bad=$(echo "$all" | grep -vE ' -?[0-9]+@(%[a-z0-9]+|-?[0-9]*\(%[a-z0-9]+\)|\$-?[0-9]+)$' || true)
[ -z "$bad" ] || fail "$tracee: argument specs the extractor refuses: $bad"

check_probes "$nowallet" "$(echo "$EXPECTED" | grep -v '^coin_selection:')"

check_probes "$sib" "$EXPECTED"
sibs=$(specs "$sib" | grep -E '\(%[a-z0-9]+,%[a-z0-9]+(,[1248])?\)' || true)
[ "$(echo "$sibs" | grep -c .)" -eq 1 ] || fail "$sib: expected one SIB spec, got: $sibs"
case "$sibs" in mempool:added*) ;; *) fail "$sib: the SIB spec is not mempool:added's: $sibs" ;; esac

[ -z "$(probes "$noprobes")" ] || fail "$noprobes: has USDT notes"
[ -z "$(probes_section "$noprobes")" ] || fail "$noprobes: has a .probes section"

[ "$failures" -eq 0 ] || exit 1
echo "tracee notes OK"
