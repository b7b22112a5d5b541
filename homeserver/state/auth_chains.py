"""Auth chain difference and the v2.1 conflicted state subgraph.

Two sources with one interface:

* `GraphAuthChains` computes from the events alone (cold; the benchmark's
  timed region). An auth chain is downward closed, so the closure of the
  events all state sets share is walked once, and each set's own events are
  walked only until they reach it.
* `AuthChainIndex` is the incremental index the server keeps as events are
  persisted: each event's auth chain as a frozenset of nids (Conduit's
  layout, chosen by measurement in `benchmarks/stateres`). With it both
  answers are set operations over the state sets' events, no graph walk.

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
        if len(state_sets) < 2:
            return set()
        seen = bytearray(len(self.graph.events))
        value_sets = [set(s.values()) for s in state_sets]
        common = set.intersection(*value_sets)
        self._closure_into(common, seen, 1, [])
        # Everything marked 1 is in every set's chain. Beyond it, each set reaches
        # its own nodes; a node is in the difference unless every set reaches it.
        reached: list[set[int]] = []
        for own in value_sets:
            local = bytearray(seen)
            found: list[int] = []
            self._closure_into(own - common, local, 2, found)
            reached.append(set(found))
        return _difference_from_closures(reached)

    def conflicted_subgraph(self, conflicted: set[int]) -> set[int]:
        """Events on an auth path between two conflicted events (conflicted events included)."""
        seen = bytearray(len(self.graph.events))
        ancestors: list[int] = []
        self._closure_into(conflicted, seen, 1, ancestors)
        auth = self.graph.auth
        on_path = bytearray(len(self.graph.events))
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
        if len(state_sets) < 2:
            return set()
        chains = self.chains
        value_sets = [set(s.values()) for s in state_sets]
        common = set.intersection(*value_sets)
        common_closure: set[int] = set()
        for nid in common:
            common_closure.update(chains[nid])
        reached = []
        for own in value_sets:
            closure: set[int] = set()
            for nid in own - common:
                closure.update(chains[nid])
            reached.append(closure - common_closure)
        return _difference_from_closures(reached)

    def conflicted_subgraph(self, conflicted: set[int]) -> set[int]:
        chains = self.chains
        ancestors: set[int] = set()
        for nid in conflicted:
            ancestors.update(chains[nid])
        return {n for n in ancestors if not conflicted.isdisjoint(chains[n])}
