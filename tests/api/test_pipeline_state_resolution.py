"""The pipeline resolves state when an event has several prev events (a forked room)."""

from __future__ import annotations

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
