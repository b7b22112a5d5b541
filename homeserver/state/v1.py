"""State resolution v1 (room version 1), as Synapse's `synapse.state.v1` performs it.

Spec: rooms/v1.md "State resolution". Only keys whose values differ are
conflicted (a key missing from a set is not); power levels, then join rules,
then memberships are resolved by replaying them in (depth, reverse sha1)
order until one fails auth; other keys take the deepest event that passes.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

from homeserver.core.auth_rules import auth_types_for_event, is_allowed
from homeserver.core.events import Event
from homeserver.state.graph import RoomGraph, StateMap

Key = tuple[str, str]


def _separate(state_sets: Sequence[StateMap]) -> tuple[StateMap, dict[int, set[int]]]:
    unconflicted: StateMap = dict(state_sets[0])
    conflicted: dict[int, set[int]] = {}
    for state in state_sets[1:]:
        for key, value in state.items():
            current = unconflicted.get(key)
            if current is None:
                if key in conflicted:
                    conflicted[key].add(value)
                else:
                    unconflicted[key] = value
            elif current != value:
                conflicted[key] = {value, current}
                del unconflicted[key]
    return unconflicted, conflicted


def _ordered(events: list[Event]) -> list[Event]:
    """Deepest first, then by sha1 of the event id."""
    return sorted(events, key=lambda e: (-e.depth, hashlib.sha1(e.event_id.encode()).hexdigest()))


def _types_for(event: Event) -> set[Key]:
    return auth_types_for_event(event.room_version, event.type, event.sender, event.state_key, event.content)


def _resolve_auth_events(events: list[Event], auth: dict[Key, Event]) -> Event:
    replay = list(reversed(_ordered(events)))
    needed = {key for event in events for key in _types_for(event)}
    auth = {key: auth[key] for key in needed if key in auth}
    previous = replay[0]
    for event in replay[1:]:
        auth[(previous.type, previous.state_key)] = previous  # type: ignore[index]
        if not is_allowed(event, auth):
            return previous
        previous = event
    return replay[-1]


def _resolve_normal_events(events: list[Event], auth: dict[Key, Event]) -> Event:
    ordered = _ordered(events)
    for event in ordered:
        if is_allowed(event, auth):
            return event
    return ordered[-1]


def resolve_v1(graph: RoomGraph, state_sets: Sequence[StateMap]) -> StateMap:
    if len(state_sets) == 1:
        return dict(state_sets[0])
    unconflicted, conflicted_nids = _separate(state_sets)
    events, keys, rejected = graph.events, graph.keys, graph.rejected
    auth: dict[Key, Event] = {}
    for nids in conflicted_nids.values():
        for nid in nids:
            if rejected[nid]:
                continue
            for key in _types_for(events[nid]):
                knid = graph.key_nid.get(key)
                if key not in auth and knid is not None and knid in unconflicted and not rejected[unconflicted[knid]]:
                    auth[key] = events[unconflicted[knid]]
    # Rejected events take no part (Synapse loads events without the rejected ones): a key
    # left with one candidate is settled, with none it is dropped.
    conflicted: dict[int, list[Event]] = {}
    for knid, nids in conflicted_nids.items():
        candidates = [events[n] for n in nids if not rejected[n]]
        if len(candidates) > 1:
            conflicted[knid] = candidates
        elif candidates:
            unconflicted[knid] = graph.nid_of[candidates[0].event_id]
    resolved: dict[int, Event] = {}
    power_key = graph.key_nid.get(("m.room.power_levels", ""))
    if power_key in conflicted:
        resolved[power_key] = _resolve_auth_events(conflicted[power_key], auth)
    for event_type in ("m.room.join_rules", "m.room.member"):
        auth.update({keys[k]: e for k, e in resolved.items()})
        for key, candidates in conflicted.items():
            if keys[key][0] == event_type:
                resolved[key] = _resolve_auth_events(candidates, auth)
    auth.update({keys[k]: e for k, e in resolved.items()})
    for key, candidates in conflicted.items():
        if key not in resolved:
            resolved[key] = _resolve_normal_events(candidates, auth)
    result = dict(unconflicted)
    result.update({k: graph.nid_of[e.event_id] for k, e in resolved.items()})
    return result
