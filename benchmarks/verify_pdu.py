"""Micro benchmark: verifying remote PDUs (parse, format check, content hash, reference hash, signature).

Compares our path (`homeserver.core.pdu_checks.check_remote_pdu`) with the
same work done naively with `canonicaljson` + `signedjson`, on realistic
~1 KB message events signed by a handful of servers, on one core.

    python -m benchmarks.verify_pdu [--events N] [--room-version V]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import random
import time
from typing import Any, Callable

import canonicaljson
import orjson
from signedjson.key import generate_signing_key, get_verify_key
from signedjson.sign import verify_signed_json
from unpaddedbase64 import decode_base64, encode_base64

from homeserver.core.event_format import check_pdu_structure
from homeserver.core.events import Event
from homeserver.core.hashes import sign_event
from homeserver.core.pdu_checks import check_remote_pdu
from homeserver.core.redaction import redact
from homeserver.core.room_versions import ROOM_VERSIONS, RoomVersion

WORDS = "the quick brown fox jumps over lazy dogs while matrix servers federate events across the network".split()


def make_events(count: int, version: RoomVersion, seed: int = 1) -> tuple[list[bytes], dict]:
    rng = random.Random(seed)
    servers = {f"server{i}.example.org": generate_signing_key(f"a_{i}") for i in range(5)}
    keys = {(name, f"ed25519:{k.version}"): get_verify_key(k) for name, k in servers.items()}
    ids = ["$" + encode_base64(rng.randbytes(32), urlsafe=True) for _ in range(64)]
    room_id = "!" + encode_base64(rng.randbytes(32), urlsafe=True) if version.room_id_from_create_event else "!AbCdEfGhIjKlMnOp:server0.example.org"
    events = []
    for i in range(count):
        server = rng.choice(sorted(servers))
        body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 70)))
        pdu = {
            "type": "m.room.message",
            "room_id": room_id,
            "sender": f"@user{rng.randint(1, 500)}:{server}",
            "content": {
                "msgtype": "m.text",
                "body": body,
                "format": "org.matrix.custom.html",
                "formatted_body": f"<p>{body[:200]}</p>",
                "m.mentions": {},
                "m.relates_to": {"m.in_reply_to": {"event_id": rng.choice(ids)}},
            },
            "depth": 1000 + i,
            "origin_server_ts": 1_700_000_000_000 + i,
            "prev_events": rng.sample(ids, rng.randint(1, 2)),
            "auth_events": rng.sample(ids, 3),
            "unsigned": {"age_ts": 1_700_000_000_000 + i},
        }
        signed = sign_event(pdu, version, server, servers[server])
        events.append(orjson.dumps(signed))
    return events, keys


def ours(raw_events: list[bytes], version: RoomVersion, keys: dict) -> None:
    lookup = lambda server, key_id: keys.get((server, key_id))  # noqa: E731
    for raw in raw_events:
        check_remote_pdu(orjson.loads(raw), version, lookup)


def naive(raw_events: list[bytes], version: RoomVersion, keys: dict) -> None:
    """The same steps done straightforwardly with the reference libraries.

    The structural format checks are shared (they are the same Python either
    way); what differs is parsing, encoding, hashing and signature checking.
    """
    for raw in raw_events:
        pdu = json.loads(raw)
        check_pdu_structure(pdu, version)
        if len(canonicaljson.encode_canonical_json(pdu)) > 65536:
            raise ValueError("too large")
        hashed = {k: v for k, v in pdu.items() if k not in ("unsigned", "signatures", "hashes")}
        if hashlib.sha256(canonicaljson.encode_canonical_json(hashed)).digest() != decode_base64(pdu["hashes"]["sha256"]):
            raise ValueError("hash mismatch")
        redacted = redact(pdu, version)
        reference = {k: v for k, v in redacted.items() if k not in ("signatures", "unsigned", "age_ts")}
        event_id = "$" + encode_base64(hashlib.sha256(canonicaljson.encode_canonical_json(reference)).digest(), urlsafe=True)
        server = pdu["sender"].split(":", 1)[1]
        (key_id,) = pdu["signatures"][server]
        verify_signed_json(copy.deepcopy(redacted), server, keys[(server, key_id)])
        Event(pdu, version, event_id=event_id)


def measure(fn: Callable[..., Any], *args: Any, repeat: int) -> float:
    """Best CPU seconds of `repeat` runs (one core: process time)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn(*args)
        best = min(best, time.process_time() - start)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--room-version", default="10", choices=list(ROOM_VERSIONS))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    version = ROOM_VERSIONS[args.room_version]
    raw_events, keys = make_events(args.events, version)
    size = sum(len(r) for r in raw_events) / len(raw_events)
    t_ours = measure(ours, raw_events, version, keys, repeat=args.repeat)
    t_naive = measure(naive, raw_events, version, keys, repeat=args.repeat)
    rate_ours, rate_naive = args.events / t_ours, args.events / t_naive
    print(f"remote PDU verification, room version {version.identifier}, {args.events} events of {size:.0f} bytes, one core")
    print(f"{'implementation':<36}{'events/s':>12}{'us/event':>12}")
    print(f"{'homeserver (check_remote_pdu)':<36}{rate_ours:>12.0f}{1e6 / rate_ours:>12.1f}")
    print(f"{'canonicaljson + signedjson (naive)':<36}{rate_naive:>12.0f}{1e6 / rate_naive:>12.1f}")
    print(f"ratio: {rate_ours / rate_naive:.2f}x")


if __name__ == "__main__":
    main()
