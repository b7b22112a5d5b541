"""Micro benchmark: push-rule evaluation of one message for every local member of a room.

The work `Push.evaluate` does per event once the room state is loaded: flatten
the event once, evaluate the shared predefined rules as far as they do not
depend on the member, then finish them per member; members with their own
rules (keyword rules here) are evaluated in full. Target (issue 8): under
5 ms for 1 000 members, on one core.

    python -m benchmarks.push_rules [--members N] [--custom FRACTION] [--repeat R]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any
from homeserver.core import push_rules

WORDS = "the quick brown fox jumps over lazy dogs while matrix servers federate events across the network".split()


def _member_rules(user_id: str, rng: random.Random, custom: float) -> tuple[push_rules.CompiledRule, ...] | None:
    """None for members with the predefined rules only, as `Push` caches them."""
    if rng.random() >= custom:
        return None
    rules = push_rules.default_rules(user_id)
    rules["content"] = [{"rule_id": word, "default": False, "enabled": True, "pattern": word,
                         "actions": ["notify", {"set_tweak": "highlight"}]} for word in rng.sample(WORDS, 3)]
    return push_rules.compile_rules(rules)


def _message(rng: random.Random, mention: str) -> dict[str, Any]:
    return {
        "type": "m.room.message", "room_id": "!bench:example.org", "sender": "@speaker:example.org",
        "content": {"msgtype": "m.text", "body": " ".join(rng.choices(WORDS, k=30)),
                    "m.mentions": {"user_ids": [mention]}},
        "origin_server_ts": 1_700_000_000_000, "depth": 10, "prev_events": ["$prev"], "auth_events": ["$a", "$b"],
    }


def run(members: int, custom: float, repeat: int) -> list[float]:
    rng = random.Random(7)
    users = [f"@user{i}:example.org" for i in range(members)]
    rulesets = {u: _member_rules(u, rng, custom) for u in users}
    names = {u: f"User {i}" for i, u in enumerate(users)}
    ctx = push_rules.PushContext(member_count=members, sender_power=0, notification_levels={})
    timings = []
    for _ in range(repeat):
        event = _message(rng, rng.choice(users))
        start = time.perf_counter()
        flat = push_rules.flatten(event)
        shared = push_rules.prepare(push_rules.DEFAULT_COMPILED, flat, ctx, event["room_id"], event["sender"])
        notified = 0
        for user in users:
            compiled = rulesets[user]
            prepared = shared if compiled is None else push_rules.prepare(compiled, flat, ctx, event["room_id"],
                                                                          event["sender"])
            actions = push_rules.evaluate_prepared(prepared, flat, ctx, names[user], user)
            notified += push_rules.notifies(actions)[0]
        timings.append((time.perf_counter() - start) * 1000)
        assert notified == members
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--custom", type=float, default=0.1, help="fraction of members with their own rules")
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    timings = run(args.members, args.custom, args.repeat)
    print(f"{args.members} members ({args.custom:.0%} with own rules), {args.repeat} messages: "
          f"median {statistics.median(timings):.2f} ms, p95 {sorted(timings)[int(len(timings) * 0.95)]:.2f} ms "
          f"per message for all members")


if __name__ == "__main__":
    main()
