"""Run the state-resolution suite: our engine (cold and warm) beside Synapse's, same fixtures, same run.

    python -m benchmarks.stateres.run [FIXTURE_OR_DIR ...] [--sizes 100,1000,10000,50000]
                                      [--shapes linear,forks,netsplit] [--room-versions 12]
                                      [--repeat 5] [--out benchmarks/out]

Without arguments it resolves the project's fixtures (tests/state/fixtures)
and generates the requested sizes (kept in OUT/fixtures for later runs).
Results must be identical between the engines (and to `expected_state` where
a fixture has one); the table gives median milliseconds and ratios, the PNG
plots time against fixture size, and OUT/stateres.json keeps everything.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.stateres import __main__ as ours
from benchmarks.stateres import synapse_impl
from benchmarks.stateres.fixture import Fixture, write_fixture
from benchmarks.stateres.generate import add_synapse_expectation, generate

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "state" / "fixtures"


def collect(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found.extend(sorted([*path.rglob("*.json"), *path.rglob("*.json.gz")]) if path.is_dir() else [path])
    return found


def generated(out: Path, sizes: list[int], shapes: list[str], versions: list[str], seed: int) -> list[Path]:
    paths = []
    for size in sizes:
        for shape in shapes:
            for version in versions:
                path = out / "fixtures" / f"{shape}-v{version}-n{size}-s{seed}.json"
                if not path.exists():
                    print(f"generating {path.name} ...", file=sys.stderr)
                    fixture = generate(shape, version, size, seed)
                    add_synapse_expectation(fixture, path)
                    write_fixture(path, fixture)
                paths.append(path)
    return paths


def measure(path: Path, repeat: int) -> dict[str, Any]:
    fixture = Fixture.load(path)
    row: dict[str, Any] = {"fixture": fixture.name, "events": fixture.size, "room_version": fixture.data["room_version"]}
    cold = ours.run(fixture, repeat)
    warm = ours.run(fixture, repeat, warm=True)
    row["ours_cold_ms"], row["ours_warm_ms"] = cold["time_ms"], warm["time_ms"]
    row["ours_phases_ms"] = cold["phases_ms"]
    resolved = sorted(tuple(t) for t in cold["resolved_state"])
    row["cold_equals_warm"] = resolved == sorted(tuple(t) for t in warm["resolved_state"])
    if fixture.expected is not None:
        row["equals_expected"] = resolved == fixture.expected
    if synapse_impl.available():
        theirs = synapse_impl.run(fixture, repeat)
        row["synapse_ms"] = theirs["time_ms"]
        row["equals_synapse"] = resolved == sorted(tuple(t) for t in theirs["resolved_state"])
        row["ratio_cold"] = theirs["time_ms"] / cold["time_ms"]
        row["ratio_warm"] = theirs["time_ms"] / warm["time_ms"]
    return row


def table(rows: list[dict[str, Any]]) -> str:
    head = f"{'fixture':<44}{'events':>7}{'ours cold':>11}{'ours warm':>11}{'synapse':>10}{'x cold':>8}{'x warm':>8}  same"
    lines = [head, "-" * len(head)]
    for r in rows:
        same = all(r.get(k, True) for k in ("equals_synapse", "equals_expected", "cold_equals_warm"))
        synapse = f"{r['synapse_ms']:>10.2f}" if "synapse_ms" in r else f"{'-':>10}"
        ratios = (f"{r['ratio_cold']:>8.1f}{r['ratio_warm']:>8.1f}" if "ratio_cold" in r else f"{'-':>8}{'-':>8}")
        lines.append(f"{r['fixture']:<44}{r['events']:>7}{r['ours_cold_ms']:>11.2f}{r['ours_warm_ms']:>11.2f}"
                     f"{synapse}{ratios}  {'yes' if same else 'NO'}")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(8, 5))
    for key, label, marker in (("synapse_ms", "Synapse", "s"), ("ours_cold_ms", "homeserver (cold)", "o"),
                               ("ours_warm_ms", "homeserver (warm index)", "^")):
        points = sorted((r["events"], r[key]) for r in rows if key in r)
        if points:
            ax.scatter(*zip(*points), label=label, marker=marker)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("events in fixture")
    ax.set_ylabel("median resolution time (ms)")
    ax.set_title("State resolution: time against fixture size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stateres.run", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--shapes", default="linear,forks,netsplit")
    parser.add_argument("--room-versions", default="12")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    paths = collect(args.paths or [FIXTURES])
    sizes = [int(s) for s in args.sizes.split(",") if s]
    paths += generated(args.out, sizes, args.shapes.split(","), args.room_versions.split(","), args.seed)
    if not synapse_impl.available():
        print("matrix-synapse is not installed: showing our engine only (pip install '.[bench]')", file=sys.stderr)
    rows = []
    for path in paths:
        rows.append(measure(path, args.repeat))
        print(f"{rows[-1]['fixture']}: done", file=sys.stderr)
    print(table(rows))
    (args.out / "stateres.json").write_text(json.dumps(rows, indent=1))
    png = args.out / "stateres.png"
    if plot(rows, png):
        print(f"plot: {png}")
    else:
        print("no plot: matplotlib is not installed (pip install '.[bench]')", file=sys.stderr)
    mismatches = [r["fixture"] for r in rows
                  if not all(r.get(k, True) for k in ("equals_synapse", "equals_expected", "cold_equals_warm"))]
    if mismatches:
        print(f"results differ on: {', '.join(mismatches)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
