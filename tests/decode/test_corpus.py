#!/usr/bin/env python3
"""The decoder against the reference corpus (../shared/reference/p2p-corpus):
49 real payloads from a regtest bitcoind, with facts computed independently
of this project in manifest.json (txid, wtxid, block hash, tx count, nonce,
user agent, inventory sizes). Every payload must decode with no error and
every fact must match. Usage: test_corpus.py DECODE_DUMP CORPUS_DIR"""
import json
import os
import subprocess
import sys


def decode(tool, msg_type, payload, budget=None):
    args = [tool, msg_type] + ([str(budget)] if budget is not None else [])
    out = subprocess.run(args, input=payload, capture_output=True, check=True).stdout
    return json.loads(out)


def main():
    tool, corpus = sys.argv[1], sys.argv[2]
    manifest = json.load(open(os.path.join(corpus, "manifest.json")))
    assert len(manifest) == 49, len(manifest)
    checked = 0
    nets = set()
    for e in manifest:
        payload = open(os.path.join(corpus, e["file"]), "rb").read()
        assert len(payload) == e["size"], e["file"]
        r = decode(tool, e["msg_type"], payload)
        assert r["rc"] == 1 and r["error"] == "", (e["file"], r)
        assert not r["truncated"], e["file"]
        d = r["decoded"]
        t = e["msg_type"]
        if "txid" in e:
            assert d["txid"] == e["txid"], (e["file"], d["txid"])
            assert d["wtxid"] == e["wtxid"], (e["file"], d["wtxid"])
            assert d["size"] == e["size"]
            assert d["vsize"] == (d["weight"] + 3) // 4
            checked += 2
        if t == "block":
            assert d["hash"] == e["hash"], (e["file"], d["hash"])
            assert d["tx_count"] == e["tx_count"] == len(d["transactions"])
            assert sum(x["size"] for x in d["transactions"]) + 80 + (1 if e["tx_count"] < 253 else 3) == e["size"]
            checked += 2
        if "nonce" in e:
            assert d["nonce"] == e["nonce"], (e["file"], d["nonce"])
            checked += 1
        if "user_agent" in e:
            assert d["user_agent"] == e["user_agent"], (e["file"], d)
            assert d["relay"] in (True, False)
            checked += 1
        if "items" in e:
            assert d["count"] == e["items"] == len(d["items"]), e["file"]
            for it in d["items"]:
                assert it["type"] != "UNKNOWN" and len(it["hash"]) == 64
            checked += 1
        if t == "addrv2":
            for a in d["addresses"]:
                nets.add(a["network"])
                if a["network"] == "torv3":
                    assert a["address"].endswith(".onion") and len(a["address"]) == 62, a
                if a["network"] == "i2p":
                    assert a["address"].endswith(".b32.i2p") and len(a["address"]) == 60, a
                if a["network"] == "cjdns":
                    assert a["address"].startswith("fc"), a
        # every prefix of a payload is an error, never a crash (all but the
        # types where Core reads trailing fields only if present: version)
        if len(payload) > 0 and t != "version" and len(payload) < 5000:
            for cut in range(0, len(payload), max(1, len(payload) // 25)):
                r2 = decode(tool, t, payload[:cut])
                assert r2["rc"] == -1 and "offset" in r2["error"], (e["file"], cut, r2)
        # one byte too many: trailing bytes
        r3 = decode(tool, t, payload + b"\x00")
        assert r3["rc"] == -1 and "trailing" in r3["error"] or t == "tx", (e["file"], r3)
    assert nets >= {"ipv4", "ipv6", "torv3", "i2p", "cjdns"}, nets
    # onion v3 and I2P text computed here with hashlib/base64 (rend-spec-v3:
    # base32(pubkey | SHA3-256(".onion checksum" | pubkey | 03)[:2] | 03)),
    # for random keys, against the decoder
    import base64
    import hashlib
    import random
    rnd = random.Random(155)
    for _ in range(20):
        key = bytes(rnd.getrandbits(8) for _ in range(32))
        chk = hashlib.sha3_256(b".onion checksum" + key + b"\x03").digest()[:2]
        onion = base64.b32encode(key + chk + b"\x03").decode().lower() + ".onion"
        i2p = base64.b32encode(key).decode().lower().rstrip("=") + ".b32.i2p"
        msg = (b"\x02" + b"\x00\xe1\xf5\x05\x00\x04\x20" + key + b"\x20\x8d"
               + b"\x00\xe1\xf5\x05\x00\x05\x20" + key + b"\x00\x00")
        d = decode(tool, "addrv2", msg)["decoded"]
        assert d["addresses"][0]["address"] == onion, (d, onion)
        assert d["addresses"][1]["address"] == i2p, (d, i2p)
    print(f"corpus: {len(manifest)} payloads decoded, {checked} facts matched, "
          f"addrv2 networks {sorted(nets)}")


if __name__ == "__main__":
    main()
