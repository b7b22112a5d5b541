"""The pipeline resolves state when an event has several prev events (a forked room)."""

from __future__ import annotations

import time

from homeserver.core.event_builder import build_event
from homeserver.storage import events as event_store
from tests.api.helpers import Api
from tests.conftest import StartServer


async def test_fork_is_resolved_by_the_pipeline(start_server: StartServer, http) -> None:  # noqa: ANN001
    hs = await start_server(enable_registration=True, enable_registration_without_verification=True)
    api = Api(http, hs)
    alice = (await api.register("alice"))["access_token"]
    _, created = await api.call("POST", "/createRoom", {"preset": "public_chat"}, token=alice)
    room_id = created["room_id"]
    room = await hs.event_store.require_room(room_id)
    pool = hs.database.pool
    (base,) = await pool.fetch("SELECT event_nid FROM forward_extremities WHERE room_nid = $1", room.room_nid)
    _, first = await api.call("PUT", f"/rooms/{room_id}/state/m.room.topic", {"topic": "first"}, token=alice)
    first_nid = await pool.fetchval("SELECT event_nid FROM events WHERE event_id = $1", first["event_id"])
    # Branch off before the first topic: the second topic does not know it.
    await pool.execute("UPDATE forward_extremities SET event_nid = $2 WHERE room_nid = $1", room.room_nid,
                       base["event_nid"])
    _, second = await api.call("PUT", f"/rooms/{room_id}/state/m.room.topic", {"topic": "second"}, token=alice)
    await pool.execute("INSERT INTO forward_extremities (room_nid, event_nid) VALUES ($1, $2)", room.room_nid,
                       first_nid)
    _, merge = await api.call("PUT", f"/rooms/{room_id}/send/m.room.message/merge", {"body": "merge"}, token=alice)
    merged = await hs.event_store.events(room, [await pool.fetchval(
        "SELECT event_nid FROM events WHERE event_id = $1", merge["event_id"])])
    (merge_event,) = merged.values()
    assert set(merge_event.prev_event_ids) == {first["event_id"], second["event_id"]}
    extremities = await pool.fetch("SELECT event_nid FROM forward_extremities WHERE room_nid = $1", room.room_nid)
    assert len(extremities) == 1
    # Both topics come from the same power-levels mainline: the later one wins.
    _, topic = await api.call("GET", f"/rooms/{room_id}/state/m.room.topic", token=alice)
    assert topic == {"topic": "second"}


async def test_resolution_graph_skips_events_whose_auth_events_are_elsewhere(start_server: StartServer, http) -> None:  # noqa: ANN001
    """An outlier another server handed us may cite an auth event of another room: the room's
    resolution graph leaves it out instead of failing (found by SyTest)."""
    hs = await start_server(enable_registration=True, enable_registration_without_verification=True)
    api = Api(http, hs)
    alice = (await api.register("alice"))["access_token"]
    rooms = []
    for _ in range(2):
        _, created = await api.call("POST", "/createRoom", {"preset": "public_chat", "room_version": "10"},
                                    token=alice)
        rooms.append(await hs.event_store.require_room(created["room_id"]))
    here, elsewhere = rooms
    state_here = await hs.event_store.state_events(here, await event_store.current_state(hs.database.pool,
                                                                                         here.room_nid))
    other_state = await hs.event_store.state_events(elsewhere, await event_store.current_state(hs.database.pool,
                                                                                               elsewhere.room_nid))
    foreign_pl = other_state[("m.room.power_levels", "")]
    odd = build_event(here.version, server_name=hs.config.server_name, signing_key=hs.server_keys.signing_key,
                      sender="@alice:test.local", event_type="m.room.topic", content={"topic": "odd"},
                      origin_server_ts=int(time.time() * 1000), room_id=here.room_id,
                      prev_events=[state_here[("m.room.create", "")]],
                      auth_events=[state_here[("m.room.create", "")], foreign_pl,
                                   state_here[("m.room.member", "@alice:test.local")]], state_key="")
    await hs.pipeline.store_outliers(here, [(odd, "auth event in another room")])
    graph, _nids = await hs.pipeline.graphs.get(here)
    assert odd.event_id not in graph.nid_of
    assert state_here[("m.room.power_levels", "")].event_id in graph.nid_of
