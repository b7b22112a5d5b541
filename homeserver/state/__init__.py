"""State resolution v1, v2 and v2.1: pure and synchronous, no I/O.

The server and the benchmark call `resolve` with a `RoomGraph` (interned
events) and state maps of key nids to event nids; auth chains come from the
persisted index (`AuthChainIndex`) or are computed from the events
(`GraphAuthChains`).
"""

from __future__ import annotations

from typing import Sequence

from homeserver.core.room_versions import StateResAlgorithm
from homeserver.state.auth_chains import AuthChainIndex, AuthChainSource, GraphAuthChains
from homeserver.state.graph import RoomGraph, StateMap
from homeserver.state.v1 import resolve_v1
from homeserver.state.v2 import resolve_v2

__all__ = ["AuthChainIndex", "AuthChainSource", "GraphAuthChains", "RoomGraph", "StateMap", "resolve"]


def resolve(
    graph: RoomGraph,
    state_sets: Sequence[StateMap],
    chains: AuthChainSource | None = None,
    phases: dict[str, float] | None = None,
) -> StateMap:
    """The resolved state of `state_sets`, by the algorithm of the graph's room version.

    `phases`, when given, receives milliseconds per phase (v2 and v2.1).
    """
    if not state_sets:
        return {}
    if graph.room_version.state_res is StateResAlgorithm.V1:
        return resolve_v1(graph, state_sets)
    return resolve_v2(graph, state_sets, chains, phases)
