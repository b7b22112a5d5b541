"""A room's events interned for state resolution: integer ids and flat per-event arrays.

Every event gets an `nid` (its position; positions follow a topological
order, so auth parents always have smaller nids) and every (type, state_key)
a `key` nid. The hot loops of state resolution read only these lists and
ints; the `Event` objects are touched when an authorization rule must run.
What depends on one event alone (its auth parents, the state keys its auth
needs, its power-levels parent, whether it is a power event) is derived once
when the event is interned, as part of building the event's record.
"""

from __future__ import annotations

from typing import Iterable

from homeserver.core.auth_rules import auth_types_for_event
from homeserver.core.events import Event
from homeserver.core.room_versions import RoomVersion

NO_KEY = -1
StateMap = dict[int, int]
"""key nid -> event nid."""


_POWER_KEYS = frozenset((("m.room.power_levels", ""), ("m.room.join_rules", ""), ("m.room.create", "")))


def _is_power_event(event: Event) -> bool:
    if event.state_key is not None and (event.type, event.state_key) in _POWER_KEYS:
        return True
    if event.type == "m.room.member" and event.membership in ("leave", "ban"):
        return event.sender != event.state_key
    return False


class RoomGraph:
    """Append-only interned view of one room's events (events must arrive after their auth events)."""

    __slots__ = (
        "room_version", "events", "event_ids", "nid_of", "auth", "key", "rejected", "key_nid", "keys",
        "create_nid", "auth_keys", "power_parent", "is_power", "children",
    )

    def __init__(self, room_version: RoomVersion) -> None:
        self.room_version = room_version
        self.events: list[Event] = []
        self.event_ids: list[str] = []
        self.nid_of: dict[str, int] = {}
        self.auth: list[tuple[int, ...]] = []
        """Auth parents of each event, with v12's implicit create event added (as Synapse does)."""
        self.key: list[int] = []
        self.rejected = bytearray()
        self.key_nid: dict[tuple[str, str], int] = {}
        self.keys: list[tuple[str, str]] = []
        self.create_nid: int | None = None
        self.auth_keys: list[tuple[int, ...]] = []
        """Key nids of the auth-events selection for each event."""
        self.power_parent: list[int] = []
        """The `m.room.power_levels` event among each event's auth parents, or -1."""
        self.is_power = bytearray()
        """Power events of state resolution v2: power levels, join rules, create, kicks and bans."""
        self.children: list[list[int]] = []
        """The reverse auth edges: events that cite each event among their auth events."""

    @classmethod
    def from_events(
        cls, room_version: RoomVersion, events: Iterable[Event], rejected: Iterable[str] = ()
    ) -> "RoomGraph":
        graph = cls(room_version)
        for event in events:
            graph.add(event)
        for event_id in rejected:
            graph.rejected[graph.nid_of[event_id]] = 1
        return graph

    def intern_key(self, key: tuple[str, str]) -> int:
        nid = self.key_nid.get(key)
        if nid is None:
            nid = self.key_nid[key] = len(self.keys)
            self.keys.append(key)
        return nid

    def add(self, event: Event, rejected: bool = False) -> int:
        """Intern an event whose auth events are already here; returns its nid."""
        existing = self.nid_of.get(event.event_id)
        if existing is not None:
            return existing
        nid = len(self.events)
        parents = [self.nid_of[a] for a in event.auth_event_ids]
        if event.type == "m.room.create" and event.state_key == "":
            self.create_nid = nid
        elif self.room_version.room_id_from_create_event:
            create_id = "$" + event.room_id[1:]
            if create_id in self.nid_of and self.nid_of[create_id] not in parents:
                parents.append(self.nid_of[create_id])
        self.events.append(event)
        self.event_ids.append(event.event_id)
        self.nid_of[event.event_id] = nid
        self.auth.append(tuple(parents))
        self.children.append([])
        for parent in parents:
            self.children[parent].append(nid)
        self.key.append(NO_KEY if event.state_key is None else self.intern_key((event.type, event.state_key)))
        self.rejected.append(1 if rejected else 0)
        types = auth_types_for_event(self.room_version, event.type, event.sender, event.state_key, event.content)
        self.auth_keys.append(tuple(self.intern_key(k) for k in sorted(types)))
        self.power_parent.append(
            next((p for p in parents if self.events[p].type == "m.room.power_levels"
                  and self.events[p].state_key == ""), -1)
        )
        self.is_power.append(1 if _is_power_event(event) else 0)
        return nid

    def state_map(self, triples: Iterable[tuple[str, str, str]]) -> StateMap:
        """Turn `[type, state_key, event_id]` triples into a key nid -> event nid map."""
        return {self.intern_key((t, s)): self.nid_of[e] for t, s, e in triples}

    def triples(self, state: StateMap) -> list[tuple[str, str, str]]:
        return sorted((*self.keys[k], self.event_ids[e]) for k, e in state.items())
