#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/decode and fuzz/corpus/decode_json from valid updates.

Each update is written in both encodings ingest accepts: protobuf (as prost or any protobuf
library writes it: proto3, default values omitted, fields in number order) and JSON (the
canonical mapping of proto/src/json.rs, plus the variants its reader documents: .proto names,
numbers, short enum names, unknown fields). `decode` seeds start with the selector byte of
fuzz/src/lib.rs (`split`): 0 no header, 1 application/x-protobuf, 2 application/json,
3 JSON with a charset, 7 a header taken from the input. Re-run after changing the contract:
    python3 fuzz/seeds.py
"""
import json
import os
import shutil

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
STATUS = {1: "IN_STOCK", 2: "LOW_STOCK", 3: "OUT_OF_STOCK", 4: "DISCONTINUED"}
FIELDS = ["item_id", "node_id", "available_qty", "reserved_qty", "status", "event_time_us", "source", "sequence"]

# (item_id, node_id, available_qty, reserved_qty, status, event_time_us, source, sequence)
UPDATES = [
    ("sku-1", "store-7", 3, 0, 1, 1_764_000_000_000_000, "pos", 1),
    ("sku-000123", "dc-east-01", 1200, 35, 2, 1_764_000_000_123_456, "wms", 18_446_744_073_709_551_614 // 2),
    ("sku-9", "fc-3", 0, 0, 3, 946_684_800_000_000, "oms", 0),
    ("sku-é-ü", "store-✓", 9_223_372_036_854_775_807, 7, 4, 4_102_444_800_000_000, "erp", 9_223_372_036_854_775_807),
    ("i" * 64, "n" * 64, 1, 1, 1, 1, "s" * 64, 42),
]


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def protobuf(u):
    out = bytearray()
    for number, value in enumerate(u, start=1):
        if isinstance(value, str):
            if value:
                data = value.encode()
                out += varint(number << 3 | 2) + varint(len(data)) + data
        elif value:
            out += varint(number << 3) + varint(value)
    return bytes(out)


def canonical_json(u):
    d = dict(zip(FIELDS, u))
    return json.dumps({
        "itemId": d["item_id"], "nodeId": d["node_id"],
        "availableQty": str(d["available_qty"]), "reservedQty": str(d["reserved_qty"]),
        "status": "AVAILABILITY_STATUS_" + STATUS[d["status"]], "eventTimeUs": str(d["event_time_us"]),
        "source": d["source"], "sequence": str(d["sequence"]),
    }, ensure_ascii=False, separators=(",", ":")).encode()


def lenient_json(u):
    d = dict(zip(FIELDS, u))
    d["status"] = STATUS[d["status"]]
    d["futureField"] = {"x": [1, 2.5, None, True]}
    return json.dumps(d, ensure_ascii=True).encode()


def numeric_json(u):
    d = dict(zip(FIELDS, u))
    return json.dumps(d, indent=1).encode()


def write(target, name, data):
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data)


def main():
    for target in ("decode", "decode_json"):
        shutil.rmtree(os.path.join(ROOT, target), ignore_errors=True)
        os.makedirs(os.path.join(ROOT, target))
    header = b"application/json; charset=UTF-8"
    for i, u in enumerate(UPDATES):
        pb, cj, lj, nj = protobuf(u), canonical_json(u), lenient_json(u), numeric_json(u)
        write("decode", f"pb-{i}", b"\x00" + pb)
        write("decode", f"pb-header-{i}", b"\x01" + pb)
        write("decode", f"json-{i}", b"\x02" + cj)
        write("decode", f"json-charset-{i}", b"\x03" + lj)
        write("decode", f"json-fuzzed-header-{i}", b"\x07" + bytes([len(header)]) + header + nj)
        write("decode_json", f"canonical-{i}", cj)
        write("decode_json", f"lenient-{i}", lj)
        write("decode_json", f"numeric-{i}", nj)
    # A few rejections, so every kind is in the corpus from the start.
    write("decode", "empty", b"\x80")
    write("decode", "csv", b"\x04item,node\nsku-1,store-7\n")
    write("decode", "invalid-pb", b"\x00" + protobuf(("", "store-7", 3, 0, 1, 1, "pos", 1)))
    write("decode", "bad-pb", b"\x00\xff\xff\xff")
    write("decode_json", "invalid-status", b'{"itemId":"sku-1","status":"MAYBE"}')
    write("decode_json", "not-json", b"{not json")


if __name__ == "__main__":
    main()
