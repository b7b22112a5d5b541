"""Random room DAGs of every shape, resolved by us and by Synapse's own implementation."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.stateres import synapse_impl
from benchmarks.stateres.fixture import Fixture
from benchmarks.stateres.generate import generate
from homeserver.state import AuthChainIndex, resolve

pytestmark = pytest.mark.skipif(not synapse_impl.available(), reason="matrix-synapse is not installed")


def synapse_resolution(fixture: Fixture) -> list[tuple[str, str, str]]:
    version, events, state_sets = synapse_impl.load(fixture)
    resolved = synapse_impl.resolve_once(fixture, version, events, state_sets)
    return sorted((t, s, e) for (t, s), e in resolved.items())


@settings(max_examples=60, deadline=None)
@given(
    shape=st.sampled_from(["linear", "forks", "netsplit"]),
    room_version=st.sampled_from(["1", "2", "6", "10", "11", "12"]),
    events=st.integers(40, 160),
    seed=st.integers(0, 2**32),
    forks=st.integers(2, 6),
    rejections=st.lists(st.integers(1, 10**6), max_size=3),
)
def test_random_rooms_resolve_like_synapse(
    shape: str, room_version: str, events: int, seed: int, forks: int, rejections: list[int]
) -> None:
    data = generate(shape, room_version, events, seed, forks=forks)
    # Rejected events (Synapse semantics): never admitted, never used as auth events.
    candidates = [e["event_id"] for e in data["events"][1:] if "state_key" in e["pdu"]]
    data["rejected"] = {candidates[r % len(candidates)]: "test" for r in rejections}
    fixture = Fixture(Path("random.json"), data)
    graph, state_sets = fixture.graph()
    ours = graph.triples(resolve(graph, state_sets))
    assert ours == synapse_resolution(fixture)
    assert graph.triples(resolve(graph, state_sets, AuthChainIndex(graph))) == ours
