"""State resolution v2 (room versions 2-11) and v2.1 (room version 12).

Spec: rooms/fragments/v2-state-res.md and rooms/v12.md. Results match
Synapse's `synapse.state.v2` exactly, including its readings of the spec: a
key missing from some state set is conflicted; the reverse topological power
sort also orders the non-power auth ancestors of power events that are in the
full conflicted set; rejected events never enter the state nor serve as auth
events.
"""

from __future__ import annotations

import heapq
import math
import time
from typing import Sequence

from homeserver.core.auth_rules import is_allowed
from homeserver.core.events import Event
from homeserver.core.power_levels import as_level, is_creator
from homeserver.core.room_versions import StateResAlgorithm
from homeserver.state.auth_chains import AuthChainSource, GraphAuthChains
from homeserver.state.graph import RoomGraph, StateMap

def separate(state_sets: Sequence[StateMap]) -> tuple[StateMap, dict[int, set[int]]]:
    """Unconflicted keys (same event in every set) and conflicted ones (with their events)."""
    first, rest = state_sets[0], state_sets[1:]
    unconflicted: StateMap = {}
    conflicted_keys: set[int] = set()
    for key, value in first.items():
        for other in rest:
            if other.get(key) != value:
                conflicted_keys.add(key)
                break
        else:
            unconflicted[key] = value
    for other in rest:
        conflicted_keys.update(other.keys() - first.keys())
    conflicted = {key: {s[key] for s in state_sets if key in s} for key in conflicted_keys}
    return unconflicted, conflicted


class _Resolution:
    """One resolution; holds only what this run computes (every run is cold)."""

    def __init__(self, graph: RoomGraph) -> None:
        self.graph = graph
        self.events = graph.events
        self.auth = graph.auth
        self.rejected = graph.rejected

    def sender_power(self, nid: int) -> float:
        """The sender's power level according to the event's own auth events."""
        event = self.events[nid]
        power_levels = create = None
        for parent in self.auth[nid]:
            candidate = self.events[parent]
            if candidate.state_key == "":
                if candidate.type == "m.room.power_levels":
                    power_levels = candidate
                elif candidate.type == "m.room.create":
                    create = candidate
        if create is not None and create.room_version.privileged_creators and is_creator(create, event.sender):
            return math.inf
        if power_levels is None:
            if create is None:
                return 0
            creator = create.sender if event.room_version.implicit_room_creator else create.content.get("creator")
            return 100 if creator == event.sender else 0
        users = power_levels.content.get("users", {})
        level = users.get(event.sender) if isinstance(users, dict) else None
        if level is None:
            level = power_levels.content.get("users_default", 0)
        return 0 if level is None else as_level(level)

    def reverse_topological_power_sort(self, power: list[int], full: set[int]) -> list[int]:
        """Kahn's algorithm from the events with no auth parents in `full`, ties by power order."""
        auth = self.auth
        outgoing: dict[int, set[int]] = {}
        stack = list(power)
        while stack:
            nid = stack.pop()
            if nid in outgoing:
                continue
            parents = set()
            for parent in auth[nid]:
                if parent in full:
                    parents.add(parent)
                    if parent not in outgoing:
                        stack.append(parent)
            outgoing[nid] = parents
        children: dict[int, list[int]] = {n: [] for n in outgoing}
        for nid, parents in outgoing.items():
            for parent in parents:
                children[parent].append(nid)
        events, ids = self.events, self.graph.event_ids
        order = {
            nid: (-self.sender_power(nid), events[nid].origin_server_ts, ids[nid], nid) for nid in outgoing
        }
        ready = [order[n] for n, parents in outgoing.items() if not parents]
        heapq.heapify(ready)
        remaining = {n: len(p) for n, p in outgoing.items()}
        result = []
        while ready:
            nid = heapq.heappop(ready)[3]
            result.append(nid)
            for child in children[nid]:
                remaining[child] -= 1
                if remaining[child] == 0:
                    heapq.heappush(ready, order[child])
        return result

    def iterative_auth_checks(self, order: list[int], state: StateMap) -> StateMap:
        graph, events, auth, rejected = self.graph, self.events, self.auth, self.rejected
        keys, key_of, auth_keys = graph.keys, graph.key, graph.auth_keys
        resolved = dict(state)
        for nid in order:
            if rejected[nid]:
                continue
            auth_state: dict[tuple[str, str], Event] = {}
            for parent in auth[nid]:
                if not rejected[parent]:
                    auth_state[keys[key_of[parent]]] = events[parent]
            for knid in auth_keys[nid]:
                current = resolved.get(knid)
                if current is not None and not rejected[current]:
                    auth_state[keys[knid]] = events[current]
            if is_allowed(events[nid], auth_state):
                resolved[key_of[nid]] = nid
        return resolved

    def mainline_sort(self, nids: list[int], power_levels: int | None) -> list[int]:
        if not nids:
            return []
        mainline: list[int] = []
        current = power_levels
        while current is not None:
            mainline.append(current)
            current = self._power_levels_parent(current)
        position = {nid: i + 1 for i, nid in enumerate(reversed(mainline))}
        depth_cache: dict[int, int] = {}

        def mainline_depth(nid: int) -> int:
            walked = []
            node: int | None = nid
            depth = 0
            while node is not None:
                if node in position:
                    depth = position[node]
                    break
                if node in depth_cache:
                    depth = depth_cache[node]
                    break
                walked.append(node)
                node = self._power_levels_parent(node)
            for w in walked:
                depth_cache[w] = depth
            return depth

        events, ids = self.events, self.graph.event_ids
        return sorted(nids, key=lambda n: (mainline_depth(n), events[n].origin_server_ts, ids[n]))

    def _power_levels_parent(self, nid: int) -> int | None:
        parent = self.graph.power_parent[nid]
        return parent if parent >= 0 else None


class _Phases:
    """Optional per-phase timing (milliseconds) for the benchmark; a no-op when not asked for."""

    def __init__(self, out: dict[str, float] | None) -> None:
        self.out = out
        self.last = time.perf_counter() if out is not None else 0.0

    def done(self, name: str) -> None:
        if self.out is not None:
            now = time.perf_counter()
            self.out[name] = self.out.get(name, 0.0) + (now - self.last) * 1000
            self.last = now


def resolve_v2(
    graph: RoomGraph,
    state_sets: Sequence[StateMap],
    chains: AuthChainSource | None = None,
    phases: dict[str, float] | None = None,
) -> StateMap:
    """Resolve `state_sets` (key nid -> event nid) with v2, or v2.1 for room version 12."""
    timer = _Phases(phases)
    unconflicted, conflicted = separate(state_sets)
    timer.done("separate")
    if not conflicted:
        return unconflicted
    chains = chains or GraphAuthChains(graph)
    run = _Resolution(graph)
    conflicted_events = set().union(*conflicted.values())
    full = chains.auth_difference(state_sets) | conflicted_events
    timer.done("auth_difference")
    v2_1 = graph.room_version.state_res is StateResAlgorithm.V2_1
    if v2_1:
        full |= chains.conflicted_subgraph(conflicted_events)
        timer.done("conflicted_subgraph")
    is_power = graph.is_power
    power = [n for n in full if is_power[n]]
    sorted_power = run.reverse_topological_power_sort(power, full)
    timer.done("power_sort")
    resolved = run.iterative_auth_checks(sorted_power, {} if v2_1 else unconflicted)
    timer.done("auth_checks_power")
    done = set(sorted_power)
    leftover = [n for n in full if n not in done]
    power_levels_key = graph.key_nid.get(("m.room.power_levels", ""))
    power_levels = resolved.get(power_levels_key) if power_levels_key is not None else None
    leftover = run.mainline_sort(leftover, power_levels)
    timer.done("mainline_sort")
    resolved = run.iterative_auth_checks(leftover, resolved)
    resolved.update(unconflicted)
    timer.done("auth_checks_rest")
    return resolved
