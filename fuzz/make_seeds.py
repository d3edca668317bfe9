#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (fuzz/seeds/<target>/), from examples/request.json
and a few hand-made responses. A tiny MessagePack encoder of its own: no packages needed.
Run from anywhere: python3 fuzz/make_seeds.py"""

import json
import pathlib
import random
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"


def pack(v):
    """MessagePack of a JSON-like value; bytes become bin, floats float64."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if 0 <= v < 2**32:
            return b"\xce" + struct.pack(">I", v)
        if v >= 0:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        return b"\xd9" + bytes([len(b)]) + b if len(b) < 256 else b"\xda" + struct.pack(">H", len(b)) + b
    if isinstance(v, (bytes, bytearray)):
        return b"\xc4" + bytes([len(v)]) + bytes(v)
    if isinstance(v, list):
        head = bytes([0x90 | len(v)]) if len(v) < 16 else b"\xdc" + struct.pack(">H", len(v))
        return head + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        head = bytes([0x80 | len(v)]) if len(v) < 16 else b"\xde" + struct.pack(">H", len(v))
        return head + b"".join(pack(k) + pack(x) for k, x in v.items())
    raise TypeError(type(v))


def floats(v):
    """JSON numbers in metric values and ready times are floats on the wire."""
    if isinstance(v, dict):
        return {k: (float(x) if k in ("target_per_pod", "interval_seconds", "ready_seconds") else floats(x)) for k, x in v.items()}
    if isinstance(v, list):
        return [float(x) if isinstance(x, int) else floats(x) for x in v]
    return v


def write(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def main():
    text = (ROOT / "examples" / "request.json").read_text()
    request = floats(json.loads(text))
    write("decode_request", "example.json", text)
    write("decode_request", "example.msgpack", pack(request))
    minimal = {"abi_version": 1, "now": 0, "replicas": {"current": 1, "ready": 1, "min": 0, "max": 4}}
    write("decode_request", "minimal.msgpack", pack(minimal))
    write("decode_request", "minimal.json", json.dumps(minimal))
    stateful = dict(request, state=b"\x01\x02\x03", params={"headroom": 0.2, "mode": "fast", "on": True})
    write("decode_request", "state_params.msgpack", pack(stateful))

    responses = {
        "fixed": {"replicas": 3, "reason": "fixed answer"},
        "float_replicas": {"replicas": 4.0, "reason": "x"},
        "forecast_state": {
            "replicas": 7,
            "reason": "forecast",
            "forecast": {"start": 1700000000000, "interval_seconds": 60.0, "values": [1.5, None, 3.0]},
            "state": b"\x00\xff",
        },
        "error": {"error": "no metric"},
        "unknown_fields": {"replicas": 2, "extra": [1, {"a": None}], "reason": ""},
    }
    for name, r in responses.items():
        write("decode_response", name + ".msgpack", pack(r))
        if name != "forecast_state":
            write("decode_response", name + ".json", json.dumps(r))

    # run_smith: bytes that wasm-smith turns into modules; any bytes do.
    rng = random.Random(20261129)
    for i, size in enumerate([64, 512, 2048, 8192]):
        write("run_smith", f"random_{i}", bytes(rng.randrange(256) for _ in range(size)))


if __name__ == "__main__":
    main()
