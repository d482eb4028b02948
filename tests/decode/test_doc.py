#!/usr/bin/env python3
"""docs/events.md ("Decoded P2P messages") against the decoder: every type
the decoder knows has a subsection; every key the decoder emits for a
sample of each type is documented in that type's subsection (in
backticks); every key in the first column of a subsection's table is
emitted. Usage: test_doc.py DECODE_DUMP EVENTS_MD"""
import json
import re
import subprocess
import sys

GENESIS = (
    "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e"
    "67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c01010000000100000000000000000000"
    "00000000000000000000000000000000000000000000ffffffff4d04ffff001d0104455468652054696d6573203033"
    "2f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f66207365636f6e64206261696c6f7574"
    "20666f722062616e6b73ffffffff0100f2052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e039"
    "09a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000")
HDR, COINBASE = GENESIS[:160], GENESIS[162:]
H = "33" * 32
SEGWIT_TX = ("020000000001011111111111111111111111111111111111111111111111111111111111111111"
             "0000000000fdffffff01e8030000000000001600140000000000000000000000000000000000000000"
             "0102aabb00000000")
SAMPLES = {
    "version": "80110100" "0900000000000000" "0100000000000000" "0000000000000000"
               "00000000000000000000ffff0a000001" "208d" "0904000000000000"
               "20010db8000000000000000000000002" "480c" "0102030405060708" "052f783a312f"
               "00350c00" "01",
    "verack": "", "sendaddrv2": "", "sendheaders": "", "getaddr": "", "mempool": "",
    "wtxidrelay": "", "filterclear": "",
    "ping": "0102030405060708", "pong": "0102030405060708", "feefilter": "e803000000000000",
    "inv": "01" "01000000" + H, "getdata": "01" "05000000" + H, "notfound": "01" "02000000" + H,
    "tx": SEGWIT_TX,
    "block": HDR + "01" + COINBASE,
    "headers": "01" + HDR + "00",
    "getheaders": "80110100" "01" + H + H, "getblocks": "80110100" "01" + H + H,
    "addr": "01" "00e1f505" "0900000000000000" "00000000000000000000ffff01020304" "208d",
    "addrv2": "01" "00e1f505" "09" "01" "04" "01020304" "208d",
    "sendcmpct": "01" "0200000000000000",
    "cmpctblock": HDR + "0807060504030201" "01" "010203040506" "01" "00" + COINBASE,
    "getblocktxn": H + "02" "00" "01",
    "blocktxn": H + "01" + COINBASE,
    "merkleblock": HDR + "01000000" "01" + H + "01" "01",
    "filterload": "03" "aabbcc" "05000000" "78563412" "01",
    "filteradd": "02" "aabb",
    "getcfilters": "00" "10270000" + H, "getcfheaders": "00" "10270000" + H,
    "cfilter": "00" + H + "03" "aabbcc",
    "cfheaders": "00" + H + H + "01" + H,
    "getcfcheckpt": "00" + H,
    "cfcheckpt": "00" + H + "01" + H,
    "sendtxrcncl": "01000000" "0807060504030201",
}


def keys_of(o, out):
    if isinstance(o, dict):
        for k, v in o.items():
            out.add(k)
            keys_of(v, out)
    elif isinstance(o, list):
        for v in o:
            keys_of(v, out)
    return out


def main():
    tool, md = sys.argv[1], sys.argv[2]
    text = open(md).read()
    sec = text[text.index("## Decoded P2P messages"):]
    sec = sec[:sec.index("\n## ", 1)]
    parts = re.split(r"\n#### ", sec)[1:]
    docs = {}
    for p in parts:
        head, body = p.split("\n", 1)
        for t in re.findall(r"`([^`]+)`", head):
            docs[t] = body
    known = subprocess.run([tool, "--types"], capture_output=True, text=True, check=True).stdout.split()
    assert len(known) == 35, known
    assert set(docs) == set(known), (set(known) - set(docs), set(docs) - set(known))
    assert set(SAMPLES) == set(known), set(known) ^ set(SAMPLES)
    for t in known:
        out = subprocess.run([tool, t], input=bytes.fromhex(SAMPLES[t]), capture_output=True,
                             check=True).stdout
        r = json.loads(out)
        assert r["rc"] == 1, (t, r)
        emitted = keys_of(r["decoded"], set())
        body = docs[t]
        documented = set(re.findall(r"`([a-z_]+)`", body))
        for row in re.findall(r"^\| (`[^|]+)\|", body, re.M):
            for k in re.findall(r"`([^`]+)`", row):
                leaf = k.split(".")[-1]
                assert leaf in emitted, f"{t}: documented key {k} is never emitted"
                documented.add(leaf)
        missing = emitted - documented
        assert not missing, f"{t}: emitted but not documented in docs/events.md: {sorted(missing)}"
    print(f"docs: {len(known)} message types, every decoded key documented")


if __name__ == "__main__":
    main()
