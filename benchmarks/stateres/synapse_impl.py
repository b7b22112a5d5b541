"""Synapse's own state resolution (installed from PyPI) on the same fixtures, for comparison.

    python -m benchmarks.stateres.synapse_impl FIXTURE [--repeat N]

Runs `synapse.state.v2.resolve_events_with_store` (or v1) with an in-memory
store. Its auth chain difference and v2.1 conflicted subgraph are computed
from the events inside the timed region, like ours, with plain set walks (the
way Synapse's own unit tests feed it); nothing is cached between runs.
None of Synapse's code is part of the project: this module only drives it.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from typing import Any, Iterable

from benchmarks.stateres.fixture import Fixture


def available() -> bool:
    try:
        import synapse.event_auth  # noqa: F401  (first: synapse.state imports it circularly)
        import synapse.state.v2  # noqa: F401
    except ImportError:
        return False
    return True


class _Clock:
    async def sleep(self, duration: Any) -> None:
        return None


class _Store:
    """The state-resolution store protocol over an in-memory event map."""

    def __init__(self, events: dict[str, Any]) -> None:
        self.events = events

    async def get_events(self, event_ids: Iterable[str], allow_rejected: bool = False) -> dict[str, Any]:
        found = {}
        for event_id in event_ids:
            event = self.events.get(event_id)
            if event is not None and (allow_rejected or event.rejected_reason is None):
                found[event_id] = event
        return found

    def _chain(self, start: Iterable[str]) -> set[str]:
        chain: set[str] = set()
        stack = list(start)
        while stack:
            event_id = stack.pop()
            if event_id in chain:
                continue
            chain.add(event_id)
            stack.extend(self.events[event_id].auth_event_ids())
        return chain

    async def get_auth_chain_difference(
        self,
        room_id: str,
        state_sets: list[set[str]],
        conflicted_state: set[str] | None = None,
        additional_backwards_reachable_conflicted_events: set[str] | None = None,
    ) -> Any:
        from synapse.storage.databases.main.event_federation import StateDifference

        chains = [self._chain(s) for s in state_sets]
        difference = set.union(*chains) - set.intersection(*chains)
        subgraph = None
        if conflicted_state is not None:
            ancestors = self._chain(conflicted_state | (additional_backwards_reachable_conflicted_events or set()))
            children: dict[str, set[str]] = {}
            for event_id in ancestors:
                for parent in self.events[event_id].auth_event_ids():
                    children.setdefault(parent, set()).add(event_id)
            forwards: set[str] = set()
            stack = list(conflicted_state)
            while stack:
                event_id = stack.pop()
                if event_id in forwards:
                    continue
                forwards.add(event_id)
                stack.extend(children.get(event_id, ()))
            subgraph = ancestors & forwards
        return StateDifference(auth_difference=difference, conflicted_subgraph=subgraph)


def _drive(coroutine: Any) -> Any:
    """Run a coroutine that never really waits (every await returns at once)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("state resolution tried to wait")


def load(fixture: Fixture) -> tuple[Any, dict[str, Any], list[dict[tuple[str, str], str]]]:
    from synapse.api.room_versions import KNOWN_ROOM_VERSIONS
    from synapse.events import make_event_from_dict

    version = KNOWN_ROOM_VERSIONS[fixture.data["room_version"]]
    rejected = fixture.data.get("rejected", {})
    events = {
        e["event_id"]: make_event_from_dict(
            copy.deepcopy(e["pdu"]), version, rejected_reason=rejected.get(e["event_id"])
        )
        for e in fixture.data["events"]
    }
    state_sets = [{(t, s): e for t, s, e in triples} for triples in fixture.state_sets]
    return version, events, state_sets


def resolve_once(fixture: Fixture, version: Any, events: dict[str, Any], state_sets: list) -> dict:
    from synapse.api.room_versions import StateResolutionVersions
    from synapse.state import v1, v2

    room_id = fixture.data["room_id"]
    if version.state_res == StateResolutionVersions.V1:
        store = _Store(events)
        return _drive(v1.resolve_events_with_store(room_id, version, state_sets, None, store.get_events))
    return _drive(
        v2.resolve_events_with_store(_Clock(), room_id, version, state_sets, None, _Store(events))
    )


def run(fixture: Fixture, repeat: int) -> dict:
    load_start = time.perf_counter()
    version, events, state_sets = load(fixture)
    load_ms = (time.perf_counter() - load_start) * 1000
    resolve_once(fixture, version, events, state_sets)  # untimed warm-up
    times, cpu = [], []
    resolved: dict = {}
    for _ in range(repeat):
        wall, proc = time.perf_counter(), time.process_time()
        resolved = resolve_once(fixture, version, events, state_sets)
        times.append((time.perf_counter() - wall) * 1000)
        cpu.append((time.process_time() - proc) * 1000)
    import synapse

    return {
        "implementation": f"synapse {synapse.__version__.split(' ')[0]}",
        "resolved_state": sorted([t, s, e] for (t, s), e in resolved.items()),
        "time_ms": statistics.median(times),
        "times_ms": times,
        "min_ms": min(times),
        "cpu_ms": statistics.median(cpu),
        "load_ms": load_ms,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stateres.synapse_impl")
    parser.add_argument("fixture")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if not available():
        print("matrix-synapse is not installed (pip install '.[bench]')", file=sys.stderr)
        return 2
    print(json.dumps(run(Fixture.load(args.fixture), args.repeat)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
