"""Every fixture resolves to its expected state (Synapse's), cold and with the warm index."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.stateres.fixture import Fixture
from homeserver.state import AuthChainIndex, GraphAuthChains, resolve

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PATHS = sorted(FIXTURES.glob("*.json")) + sorted(FIXTURES.glob("generated/*.json.gz"))


def test_fixtures_are_present() -> None:
    assert len(PATHS) >= 31, f"expected the fixtures in {FIXTURES}"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_fixture(path: Path) -> None:
    fixture = Fixture.load(path)
    graph, state_sets = fixture.graph()
    assert graph.triples(resolve(graph, state_sets)) == fixture.expected
    assert graph.triples(resolve(graph, state_sets, AuthChainIndex(graph))) == fixture.expected


@pytest.mark.parametrize("path", [p for p in PATHS if "generated" in str(p)], ids=lambda p: p.name)
def test_warm_index_agrees_with_the_cold_walk(path: Path) -> None:
    graph, state_sets = Fixture.load(path).graph()
    cold, warm = GraphAuthChains(graph), AuthChainIndex(graph)
    assert cold.auth_difference(state_sets) == warm.auth_difference(state_sets)
    conflicted = {n for s in state_sets for n in s.values()} - set.intersection(*(set(s.values()) for s in state_sets))
    assert cold.conflicted_subgraph(conflicted) == warm.conflicted_subgraph(conflicted)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_order_of_state_sets_does_not_matter(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from([p for p in PATHS if "n100-" in p.name or "n1000-" not in p.name]))
    graph, state_sets = Fixture.load(path).graph()
    permuted = data.draw(st.permutations(state_sets))
    assert resolve(graph, permuted) == resolve(graph, state_sets)
