"""Auth chain difference and the v2.1 conflicted state subgraph.

Two sources with one interface:

* `GraphAuthChains` computes from the events alone (cold; the benchmark's
  timed region). Auth chains are downward closed, so each set's own events
  are walked only until they reach events all sets share, and the work is
  proportional to where the sets differ, not to the size of the room.
* `AuthChainIndex` is the incremental index the server keeps as events are
  persisted: each event's auth chain as a frozenset of nids (Conduit's
  layout). With it the downward walks become unions of stored chains, so
  the server needs no events loaded to find the difference.

Chains here include the event itself, as Synapse's do.
"""

from __future__ import annotations

from typing import Iterable, Protocol, Sequence

from homeserver.state.graph import RoomGraph, StateMap


class AuthChainSource(Protocol):
    def auth_difference(self, state_sets: Sequence[StateMap]) -> set[int]: ...

    def conflicted_subgraph(self, conflicted: set[int]) -> set[int]: ...


def _difference_from_closures(closures: list[set[int]]) -> set[int]:
    union = set().union(*closures)
    return union - set.intersection(*closures) if closures else set()


def _classify(graph: RoomGraph, closures: list[set[int]], common: set[int]) -> set[int]:
    """The difference: events some closures hold and others lack, unless they are ancestors of a
    shared event (a search up their few descendants settles that, memoised both ways)."""
    children = graph.children
    below: set[int] = set()
    not_below: set[int] = set()

    def is_below(start: int) -> bool:
        seen = {start}
        stack = [start]
        while stack:
            node = stack.pop()
            for child in children[node]:
                if child in common or child in below:
                    below.add(start)
                    return True
                if child not in seen and child not in not_below:
                    seen.add(child)
                    stack.append(child)
        not_below.update(seen)
        return False

    candidates = set().union(*closures) - set.intersection(*closures)
    return {n for n in candidates if n not in common and not is_below(n)}


def _on_paths(graph: RoomGraph, ancestors: Iterable[int], conflicted: set[int]) -> set[int]:
    """Of the conflicted events' ancestors, those that descend from a conflicted event."""
    auth = graph.auth
    on_path = bytearray(len(graph.events))
    found: set[int] = set()
    for node in sorted(ancestors):  # nids are topological: parents come first
        if node in conflicted:
            on_path[node] = 1
        else:
            for parent in auth[node]:
                if on_path[parent]:
                    on_path[node] = 1
                    break
        if on_path[node]:
            found.add(node)
    return found


class GraphAuthChains:
    """Cold: walks the auth DAG of `graph`, keeping nothing between calls."""

    def __init__(self, graph: RoomGraph) -> None:
        self.graph = graph

    def _closure_into(self, starts: Iterable[int], seen: bytearray, mark: int, out: list[int]) -> None:
        """Depth-first walk from `starts`, skipping nodes already marked (any mark)."""
        auth = self.graph.auth
        stack = [s for s in starts if not seen[s]]
        for s in stack:
            seen[s] = mark
        while stack:
            node = stack.pop()
            out.append(node)
            for parent in auth[node]:
                if not seen[parent]:
                    seen[parent] = mark
                    stack.append(parent)

    def auth_difference(self, state_sets: Sequence[StateMap]) -> set[int]:
        """Walk each set's own events down to the events all sets share, then classify the rest.

        The closure of the shared events is in every chain, and auth chains are
        downward closed, so each set's walk stops at shared events. An event
        reached by some sets but not all is in the difference unless it is an
        ancestor of a shared event, which a search up its (few) descendants
        settles; nothing walks the whole room.
        """
        if len(state_sets) < 2:
            return set()
        value_sets = [set(s.values()) for s in state_sets]
        common = set.intersection(*value_sets)
        auth = self.graph.auth
        closures: list[set[int]] = []
        for own in value_sets:
            found = set(own - common)
            stack = list(found)
            while stack:
                for parent in auth[stack.pop()]:
                    if parent not in found and parent not in common:
                        found.add(parent)
                        stack.append(parent)
            closures.append(found)
        return _classify(self.graph, closures, common)

    def conflicted_subgraph(self, conflicted: set[int]) -> set[int]:
        """Events on an auth path between two conflicted events (conflicted events included)."""
        seen = bytearray(len(self.graph.events))
        ancestors: list[int] = []
        self._closure_into(conflicted, seen, 1, ancestors)
        return _on_paths(self.graph, ancestors, conflicted)


class AuthChainIndex:
    """Warm: every event's auth chain (itself included), kept as events are added."""

    def __init__(self, graph: RoomGraph) -> None:
        self.graph = graph
        self.chains: list[frozenset[int]] = []
        self.extend()

    def extend(self) -> None:
        """Index the events added to the graph since the last call."""
        auth, chains = self.graph.auth, self.chains
        for nid in range(len(chains), len(self.graph.events)):
            parents = auth[nid]
            if not parents:
                chains.append(frozenset((nid,)))
            elif len(parents) == 1:
                chains.append(chains[parents[0]] | {nid})
            else:
                chains.append(frozenset().union(*(chains[p] for p in parents), (nid,)))

    def auth_difference(self, state_sets: Sequence[StateMap]) -> set[int]:
        """As the cold walk, with each set's closure a union of stored chains instead of a walk."""
        if len(state_sets) < 2:
            return set()
        chains = self.chains
        value_sets = [set(s.values()) for s in state_sets]
        common = set.intersection(*value_sets)
        closures = []
        for own in value_sets:
            closure: set[int] = set()
            for nid in own - common:
                closure.update(chains[nid])
            closures.append(closure)
        return _classify(self.graph, closures, common)

    def conflicted_subgraph(self, conflicted: set[int]) -> set[int]:
        ancestors: set[int] = set()
        for nid in conflicted:
            ancestors.update(self.chains[nid])
        return _on_paths(self.graph, ancestors, conflicted)
