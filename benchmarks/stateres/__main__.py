"""Resolve one fixture with our engine and print FORMAT.md's JSON result.

    python -m benchmarks.stateres FIXTURE [--repeat N] [--warm]

Timed region (each run cold, as FORMAT.md defines): from interned events and
state maps to the resolved map, including the auth chain difference and the
v2.1 conflicted subgraph computed from the events. `--warm` instead uses the
persisted auth-chain index (built before the clock starts). `phases_ms` comes
from one extra untimed run, so the timed runs carry no instrumentation.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from benchmarks.stateres.fixture import Fixture
from homeserver.state import AuthChainIndex, resolve


def run(fixture: Fixture, repeat: int, warm: bool = False) -> dict:
    load_start = time.perf_counter()
    graph, state_sets = fixture.graph()
    load_ms = (time.perf_counter() - load_start) * 1000
    index = AuthChainIndex(graph) if warm else None
    phases: dict[str, float] = {}
    resolve(graph, state_sets, index, phases)  # untimed: warms up and measures the phases; keeps nothing
    times, cpu = [], []
    resolved = {}
    for _ in range(repeat):
        wall, proc = time.perf_counter(), time.process_time()
        resolved = resolve(graph, state_sets, index)
        times.append((time.perf_counter() - wall) * 1000)
        cpu.append((time.process_time() - proc) * 1000)
    return {
        "implementation": "homeserver" + (" (warm index)" if warm else ""),
        "resolved_state": [list(t) for t in graph.triples(resolved)],
        "time_ms": statistics.median(times),
        "times_ms": times,
        "min_ms": min(times),
        "cpu_ms": statistics.median(cpu),
        "phases_ms": phases,
        "load_ms": load_ms,
        "stats": {"events": fixture.size, "state_sets": len(state_sets)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stateres", description=__doc__.split("\n")[0])
    parser.add_argument("fixture")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--warm", action="store_true", help="use the persisted auth-chain index")
    args = parser.parse_args(argv)
    result = run(Fixture.load(args.fixture), args.repeat, args.warm)
    print(json.dumps(result))
    expected = Fixture.load(args.fixture).expected
    if expected is not None and sorted(tuple(t) for t in result["resolved_state"]) != expected:
        print("resolved state differs from expected_state", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
