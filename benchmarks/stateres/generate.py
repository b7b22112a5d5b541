"""Generate realistic room DAGs as state-resolution fixtures, deterministic from a seed.

    python -m benchmarks.stateres.generate --shape forks --room-version 12 --events 10000 --seed 1 -o out.json

Shapes:
  linear    a big, mostly linear room with many members (joins, profile changes,
            topics), small forks merged back every `--merge-every` events, and
            two short forks at the end to resolve;
  forks     many concurrent forks from one point with conflicting power-level,
            ban, join-rule and membership changes;
  netsplit  two groups of servers diverge for K events each (`--fork-len`).

Every event is hashed, signed by its sender's server and allowed by the auth
rules against the state of its branch (proposals that fail are dropped and
counted). Intermediate states at merges are resolved with our engine; the
`expected_state` is Synapse's resolution when matrix-synapse is installed
(else null, and the runner compares the two engines itself).
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signedjson.key import decode_signing_key_base64, encode_verify_key_base64, get_verify_key
from unpaddedbase64 import encode_base64

from benchmarks.stateres.fixture import FORMAT, Fixture, write_fixture
from homeserver.core.auth_rules import is_allowed
from homeserver.core.event_builder import build_event, select_auth_events
from homeserver.core.events import Event
from homeserver.core.room_versions import ROOM_VERSIONS, RoomVersion
from homeserver.state import RoomGraph, resolve

Key = tuple[str, str]

MIXES = {
    "linear": {"member": 5, "profile": 3, "topic": 1},
    "forks": {"power": 3, "ban": 3, "joinrule": 2, "member": 3, "profile": 1, "topic": 3},
    "netsplit": {"member": 6, "profile": 2, "topic": 1, "power": 0.5, "ban": 0.5, "joinrule": 0.2},
}
TRUNK_MIX = {"member": 5, "profile": 3, "topic": 0.5, "power": 0.15, "ban": 0.15, "joinrule": 0.05}
DEFAULTS = {  # shape: (forks, fork_len, merge_every)
    "linear": (2, 3, 150),
    "forks": (8, 6, 300),
    "netsplit": (2, 0, 300),
}


class Pool:
    """A set with O(1) add, remove and random choice, deterministic for a seeded generator."""

    def __init__(self, items: list[str] | None = None) -> None:
        self.items: list[str] = []
        self.index: dict[str, int] = {}
        for item in items or ():
            self.add(item)

    def add(self, item: str) -> None:
        if item not in self.index:
            self.index[item] = len(self.items)
            self.items.append(item)

    def remove(self, item: str) -> None:
        i = self.index.pop(item, None)
        if i is None:
            return
        last = self.items.pop()
        if i < len(self.items):
            self.items[i] = last
            self.index[last] = i

    def choice(self, rng: random.Random, allowed: set[str] | None = None) -> str | None:
        """A random member, from `allowed` when given (tries a few draws, then scans)."""
        if not self.items:
            return None
        for _ in range(8):
            item = rng.choice(self.items)
            if allowed is None or item in allowed:
                return item
        candidates = [i for i in self.items if allowed is None or i in allowed]
        return rng.choice(candidates) if candidates else None

    def copy(self) -> "Pool":
        pool = Pool()
        pool.items, pool.index = list(self.items), dict(self.index)
        return pool


@dataclass
class Branch:
    head: list[Event]
    state: dict[Key, Event]
    joined: Pool = field(default_factory=Pool)
    outside: Pool = field(default_factory=Pool)
    banned: Pool = field(default_factory=Pool)

    def copy(self) -> "Branch":
        return Branch(list(self.head), dict(self.state), self.joined.copy(), self.outside.copy(), self.banned.copy())

    def track(self, event: Event) -> None:
        """Keep the membership pools in step with a member event that entered the state."""
        if event.type != "m.room.member" or event.state_key is None:
            return
        user = event.state_key
        for pool in (self.joined, self.outside, self.banned):
            pool.remove(user)
        {"join": self.joined, "ban": self.banned}.get(event.membership or "", self.outside).add(user)


class Generator:
    def __init__(self, version: RoomVersion, seed: int, servers: int, members: int) -> None:
        self.version = version
        self.rng = random.Random(seed)
        self.servers = [f"hs{i}.example" for i in range(servers)]
        self.keys = {
            s: decode_signing_key_base64("ed25519", "auto", encode_base64(self.rng.randbytes(32)))
            for s in self.servers
        }
        self.users = [f"@u{i}:{self.servers[i % servers]}" for i in range(members)]
        self.creator = self.users[0]
        self.events: list[Event] = []
        self.graph = RoomGraph(version)
        self.ts = 1_700_000_000_000
        self.room_id: str | None = None
        if not version.room_id_from_create_event:
            self.room_id = f"!{encode_base64(self.rng.randbytes(12), urlsafe=True)}:{self.servers[0]}"
        self.rejected_proposals: dict[str, int] = {}

    def emit(
        self, branch: Branch, event_type: str, sender: str, content: dict[str, Any], state_key: str | None,
        state: dict[Key, Event] | None = None,
    ) -> Event | None:
        """Build the next event on `branch`; None (and counted) if the auth rules refuse it."""
        state = branch.state if state is None else state
        self.ts += self.rng.randint(1, 5000)
        server = sender.partition(":")[2]
        event = build_event(
            self.version,
            server_name=server,
            signing_key=self.keys[server],
            sender=sender,
            event_type=event_type,
            content=content,
            origin_server_ts=self.ts,
            room_id=self.room_id,
            prev_events=branch.head,
            auth_events=select_auth_events(self.version, event_type, sender, state_key, content, state),
            state_key=state_key,
        )
        if event_type != "m.room.create" and not is_allowed(event, state):
            self.rejected_proposals[event_type] = self.rejected_proposals.get(event_type, 0) + 1
            return None
        if self.room_id is None:
            self.room_id = event.room_id
        self.events.append(event)
        self.graph.add(event)
        branch.head = [event]
        if state is not branch.state:
            branch.state = dict(state)
            branch.joined, branch.outside, branch.banned = Pool(), Pool(self.users), Pool()
            for key, member in state.items():
                if key[0] == "m.room.member":
                    branch.track(member)
        if event.state_key is not None:
            branch.state[(event.type, event.state_key)] = event
            branch.track(event)
        return event

    def setup(self) -> Branch:
        branch = Branch([], {}, outside=Pool(self.users))
        content: dict[str, Any] = {"room_version": self.version.identifier}
        if not self.version.implicit_room_creator:
            content["creator"] = self.creator
        self.emit(branch, "m.room.create", self.creator, content, "")
        self.emit(branch, "m.room.member", self.creator, {"membership": "join"}, self.creator)
        users = {} if self.version.privileged_creators else {self.creator: 100}
        self.emit(branch, "m.room.power_levels", self.creator, {"users": users, "state_default": 50,
                  "events": {"m.room.topic": 10}}, "")
        self.emit(branch, "m.room.join_rules", self.creator, {"join_rule": "public"}, "")
        self.emit(branch, "m.room.history_visibility", self.creator, {"history_visibility": "shared"}, "")
        return branch

    def powerful(self, branch: Branch, allowed: set[str] | None) -> str:
        """A joined user with power over others (the creator or anyone given 50+)."""
        power_levels = branch.state.get(("m.room.power_levels", ""))
        levels = power_levels.content.get("users", {}) if power_levels else {}
        found = [u for u, level in levels.items() if level >= 50 and u in branch.joined.index
                 and (allowed is None or u in allowed)]
        if self.creator in branch.joined.index:
            found.append(self.creator)
        return self.rng.choice(found) if found else self.creator

    def step(self, branch: Branch, mix: dict[str, float], senders: set[str] | None = None) -> None:
        """One operation of a kind drawn from `mix`, by a plausible sender."""
        kinds, weights = zip(*mix.items())
        kind = self.rng.choices(kinds, weights)[0]
        state, rng = branch.state, self.rng
        member = branch.joined.choice(rng, senders) or branch.joined.choice(rng) or self.creator
        if kind == "member":
            outsider = branch.outside.choice(rng, senders)
            if outsider and (rng.random() < 0.8 or len(branch.joined.items) < 3):
                join_rules = state.get(("m.room.join_rules", ""))
                if join_rules is not None and join_rules.content.get("join_rule") != "public":
                    self.emit(branch, "m.room.member", self.powerful(branch, senders), {"membership": "invite"}, outsider)
                self.emit(branch, "m.room.member", outsider, {"membership": "join"}, outsider)
            else:
                self.emit(branch, "m.room.member", member, {"membership": "leave"}, member)
        elif kind == "profile":
            self.emit(branch, "m.room.member", member,
                      {"membership": "join", "displayname": f"User {rng.randint(0, 10**6)}"}, member)
        elif kind == "topic":
            self.emit(branch, "m.room.topic", member, {"topic": f"Topic {rng.randint(0, 10**6)}"}, "")
        elif kind == "power":
            power_levels = state[("m.room.power_levels", "")]
            users = dict(power_levels.content.get("users", {}))
            users[member] = rng.choice([0, 0, 10, 50, 50, 100])
            if self.version.privileged_creators:
                users.pop(self.creator, None)
            content = {**power_levels.content, "users": users}
            self.emit(branch, "m.room.power_levels", self.powerful(branch, senders), content, "")
        elif kind == "ban":
            banned = branch.banned.choice(rng)
            if banned and rng.random() < 0.3:
                self.emit(branch, "m.room.member", self.powerful(branch, senders), {"membership": "leave"}, banned)
            else:
                self.emit(branch, "m.room.member", self.powerful(branch, senders), {"membership": "ban"}, member)
        elif kind == "joinrule":
            current = state[("m.room.join_rules", "")].content.get("join_rule")
            rule = "invite" if current == "public" else "public"
            self.emit(branch, "m.room.join_rules", self.powerful(branch, senders), {"join_rule": rule}, "")

    def fork(self, trunk: Branch, count: int, lengths: list[int], mix: dict[str, float],
             senders: list[set[str]] | None = None) -> list[Branch]:
        branches = [trunk.copy() for _ in range(count)]
        for i, (branch, length) in enumerate(zip(branches, lengths)):
            before = len(self.events)
            while len(self.events) - before < length:
                self.step(branch, mix, senders[i] if senders else None)
        return branches

    def merge(self, trunk: Branch, branches: list[Branch]) -> None:
        """A trunk event citing every branch head, on the resolved state."""
        state_sets = [{self.graph.key_nid[k]: self.graph.nid_of[e.event_id] for k, e in b.state.items()}
                      for b in branches]
        resolved = resolve(self.graph, state_sets)
        state = {self.graph.keys[k]: self.graph.events[e] for k, e in resolved.items()}
        trunk.head = [h for b in branches for h in b.head]
        joined = sorted(k[1] for k, e in state.items() if k[0] == "m.room.member" and e.membership == "join")
        for _ in range(20):
            user = self.rng.choice(joined)
            if self.emit(trunk, "m.room.member", user,
                         {"membership": "join", "displayname": f"Merged {self.rng.randint(0, 10**6)}"},
                         user, state=state):
                return
        raise RuntimeError("could not merge")


def generate(shape: str, room_version: str, events: int, seed: int = 1, members: int | None = None,
             forks: int | None = None, fork_len: int | None = None, servers: int = 4) -> dict[str, Any]:
    version = ROOM_VERSIONS[room_version]
    default_forks, default_len, merge_every = DEFAULTS[shape]
    forks = forks or default_forks
    members = members or max(10, events // 5)
    if shape == "netsplit":
        fork_len = fork_len or max(3, events // 10)
    fork_len = fork_len or default_len
    gen = Generator(version, seed, servers, members)
    trunk = gen.setup()
    rng = gen.rng
    fork_lens = [fork_len if shape == "netsplit" else rng.randint(max(2, fork_len // 2), fork_len)
                 for _ in range(forks)]
    trunk_target = max(len(gen.events), events - sum(fork_lens))
    merges = 0
    next_merge = merge_every
    while len(gen.events) < trunk_target:
        if len(gen.events) >= next_merge and trunk_target - len(gen.events) > 10:
            next_merge += merge_every
            gen.merge(trunk, gen.fork(trunk, 2, [2, 3], MIXES["forks"]))
            merges += 1
        else:
            gen.step(trunk, TRUNK_MIX)
    senders = None
    if shape == "netsplit":
        # Each side of the split talks through its own servers only.
        groups = [{s for i, s in enumerate(gen.servers) if i % forks == side % len(gen.servers)}
                  for side in range(forks)]
        senders = [{u for u in gen.users if u.partition(":")[2] in g} for g in groups]
    branches = gen.fork(trunk, forks, fork_lens, MIXES[shape], senders)
    fixture: dict[str, Any] = {
        "format": FORMAT,
        "description": f"benchmarks.stateres.generate shape={shape} room_version={room_version} "
                       f"events={len(gen.events)} members={members} seed={seed}",
        "room_version": room_version,
        "room_id": gen.room_id,
        "meta": {
            "generator": "benchmarks.stateres.generate",
            "params": {"shape": shape, "room_version": room_version, "events": events, "members": members,
                       "forks": forks, "fork_lens": fork_lens, "merge_every": merge_every, "seed": seed,
                       "servers": servers},
            "counts": {"events": len(gen.events), "trunk_merges": merges,
                       "proposals_rejected_by_auth": gen.rejected_proposals},
        },
        "server_keys": {s: {"ed25519:auto": encode_verify_key_base64(get_verify_key(k))} for s, k in gen.keys.items()},
        "state_sets": [sorted([e.type, e.state_key, e.event_id] for e in b.state.values()) for b in branches],
        "expected_state": None,
        "events": [{"event_id": e.event_id, "pdu": e.pdu} for e in gen.events],
    }
    return fixture


def add_synapse_expectation(fixture: dict[str, Any], path: Path) -> None:
    """Fill `expected_state` with Synapse's answer when matrix-synapse is installed."""
    from benchmarks.stateres import synapse_impl

    if not synapse_impl.available():
        return
    loaded = Fixture(path, fixture)
    version, events, state_sets = synapse_impl.load(loaded)
    resolved = synapse_impl.resolve_once(loaded, version, events, state_sets)
    import synapse

    fixture["expected_state"] = sorted([t, s, e] for (t, s), e in resolved.items())
    fixture["meta"]["expected_by"] = f"synapse {synapse.__version__.split(' ')[0]} resolve_events_with_store"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stateres.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=sorted(MIXES), required=True)
    parser.add_argument("--room-version", default="12", choices=["10", "11", "12"])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--members", type=int)
    parser.add_argument("--forks", type=int)
    parser.add_argument("--fork-len", type=int)
    parser.add_argument("--no-expected", action="store_true", help="do not ask Synapse for expected_state")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    fixture = generate(args.shape, args.room_version, args.events, args.seed, args.members, args.forks, args.fork_len)
    if not args.no_expected:
        add_synapse_expectation(fixture, args.output)
    write_fixture(args.output, fixture)
    print(f"wrote {args.output} ({fixture['meta']['counts']['events']} events)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
