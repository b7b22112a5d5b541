"""Pass counts per SyTest area, and the whitelist ratchet.

    python sytest-compat/summary.py RESULTS.tap RESULTS.log SYTEST_WHITELIST [--write-whitelist]

RESULTS.tap is SyTest's TAP output (`-O tap`), RESULTS.log its progress log (stderr), which
names the file of every test; the area is the test file's folder (`tests/10apidoc/...` ->
10apidoc). Exit status 1 when a whitelisted test did not pass or a passing test is missing from
the whitelist (`--write-whitelist` rewrites the whitelist with the passing tests, flaky ones aside). Tests
listed in `sytest-flaky` next to the whitelist (they pass in some runs only) count for neither.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

TAP_LINE = re.compile(r"^(ok|not ok) (\d+) (?:\(expected fail\) )?(.*?)(?: \(\d+ subtests\))?(?: # (skip|TODO).*)?$")
LOG_FILE = re.compile(r"^(tests/(?:[^/]+/)*[^/]+\.pl):$")
LOG_TEST = re.compile(r"^\s+Test (\d+) ")


def parse_tap(path: Path) -> dict[int, tuple[str, bool]]:
    """Test number -> (name, passed); skipped tests do not pass."""
    results: dict[int, tuple[str, bool]] = {}
    for line in path.read_text(errors="replace").splitlines():
        match = TAP_LINE.match(line)
        if match:
            results[int(match.group(2))] = (match.group(3), match.group(1) == "ok" and match.group(4) != "skip")
    return results


def areas(path: Path) -> dict[int, str]:
    """Test number -> area, from the progress log."""
    found: dict[int, str] = {}
    area = "?"
    for line in path.read_text(errors="replace").splitlines():
        file_match = LOG_FILE.match(line)
        if file_match:
            parts = file_match.group(1).split("/")
            area = parts[1] if len(parts) > 2 else parts[1].removesuffix(".pl")
            continue
        test_match = LOG_TEST.match(line)
        if test_match:
            found[int(test_match.group(1))] = area
    return found


def read_whitelist(path: Path) -> set[str]:
    if not path.exists():
        return set()
    names = set()
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            names.add(stripped)
    return names


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    tap, log, whitelist_path = Path(argv[0]), Path(argv[1]), Path(argv[2])
    results = parse_tap(tap)
    area_of = areas(log)
    total: Counter[str] = Counter()
    passed: Counter[str] = Counter()
    for number, (_name, ok) in results.items():
        area = area_of.get(number, "?")
        total[area] += 1
        passed[area] += ok
    print(f"{'area':<24}{'passed':>8}{'tests':>8}")
    for area in sorted(total):
        print(f"{area:<24}{passed[area]:>8}{total[area]:>8}   {100 * passed[area] / total[area]:5.1f} %")
    all_passed, all_total = sum(passed.values()), sum(total.values())
    if all_total:
        print(f"{'all':<24}{all_passed:>8}{all_total:>8}   {100 * all_passed / all_total:5.1f} %")
    passing = {name for name, ok in results.values() if ok}
    ran = {name for name, _ok in results.values()}
    whitelist = read_whitelist(whitelist_path)
    flaky = read_whitelist(whitelist_path.with_name("sytest-flaky"))
    if "--write-whitelist" in argv:
        header = [line for line in whitelist_path.read_text().splitlines() if line.startswith("#")] \
            if whitelist_path.exists() else []
        listed = sorted(passing - flaky)
        whitelist_path.write_text("\n".join(header + listed) + "\n")
        print(f"wrote {len(listed)} tests to {whitelist_path} (flaky ones left out)")
        return 0
    regressed = sorted((whitelist & ran) - passing - flaky)
    unlisted = sorted(passing - whitelist - flaky)
    for name in regressed:
        print(f"REGRESSED (whitelisted, did not pass): {name}")
    for name in unlisted:
        print(f"NEW PASS (add to sytest-whitelist): {name}")
    return 1 if regressed or unlisted else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
