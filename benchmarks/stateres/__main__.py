"""Resolve one fixture with our engine and print FORMAT.md's JSON result.

    python -m benchmarks.stateres FIXTURE [--repeat N] [--warm]

Timed region (each run cold, as FORMAT.md defines): from interned events and
state maps to the resolved map, including the auth chain difference and the
v2.1 conflicted subgraph computed from the events. `--warm` instead uses the
persisted auth-chain index (built before the clock starts), as the server runs.
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
    resolve(graph, state_sets, index)  # untimed warm-up: imports, first-call costs; keeps nothing
    times, cpu, phase_runs = [], [], []
    resolved = {}
    for _ in range(repeat):
        phases: dict[str, float] = {}
        wall, proc = time.perf_counter(), time.process_time()
        resolved = resolve(graph, state_sets, index, phases)
        times.append((time.perf_counter() - wall) * 1000)
        cpu.append((time.process_time() - proc) * 1000)
        phase_runs.append(phases)
    names = phase_runs[0].keys() if phase_runs else ()
    return {
        "implementation": "homeserver" + (" (warm index)" if warm else ""),
        "resolved_state": [list(t) for t in graph.triples(resolved)],
        "time_ms": statistics.median(times),
        "times_ms": times,
        "min_ms": min(times),
        "cpu_ms": statistics.median(cpu),
        "phases_ms": {n: statistics.median(p.get(n, 0.0) for p in phase_runs) for n in names},
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
