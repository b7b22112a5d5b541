"""Reading and writing `matrix-stateres-fixture/1` files (../shared/stateres/FORMAT.md)."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from homeserver.core.events import Event
from homeserver.core.room_versions import ROOM_VERSIONS, RoomVersion
from homeserver.state import RoomGraph, StateMap

FORMAT = "matrix-stateres-fixture/1"
Triple = tuple[str, str, str]


@dataclass
class Fixture:
    path: Path
    data: dict[str, Any]

    @classmethod
    def load(cls, path: Path | str) -> "Fixture":
        path = Path(path)
        raw = path.read_bytes()
        data = orjson.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)
        if data.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} file")
        return cls(path, data)

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(".gz").removesuffix(".json")

    @property
    def room_version(self) -> RoomVersion:
        return ROOM_VERSIONS[self.data["room_version"]]

    @property
    def state_sets(self) -> list[list[Triple]]:
        return [[tuple(t) for t in s] for s in self.data["state_sets"]]  # type: ignore[misc]

    @property
    def expected(self) -> list[Triple] | None:
        expected = self.data.get("expected_state")
        return None if expected is None else sorted(tuple(t) for t in expected)  # type: ignore[misc]

    @property
    def size(self) -> int:
        return len(self.data["events"])

    def graph(self) -> tuple[RoomGraph, list[StateMap]]:
        """Our in-memory structures (not timed): interned events and state maps."""
        version = self.room_version
        events = [Event(e["pdu"], version, event_id=e["event_id"]) for e in self.data["events"]]
        graph = RoomGraph.from_events(version, events, self.data.get("rejected", {}))
        return graph, [graph.state_map(s) for s in self.state_sets]


def write_fixture(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, separators=(",", ":"), sort_keys=False) + "\n", encoding="utf-8")
