"""Dehydrated devices (MSC3814, the `org.matrix.msc3814.v1` endpoints Element uses): a device
whose encrypted state the client parks on the server so that messages sent while the user has no
device online can be decrypted by the next device they log in on.

The dehydrated device is an ordinary device with keys (so others encrypt to it); a new one
replaces the old in one transaction. Its to-device messages are fetched in batches, each
request acknowledging (deleting) what the previous batch returned.
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import MatrixError, bad_json, forbidden, invalid_param, not_found
from homeserver.services.e2ee import EndToEnd
from homeserver.services.sessions import Requester
from homeserver.storage import dehydrated_devices as store
from homeserver.storage import devices as device_store
from homeserver.storage import e2ee as e2ee_store
from homeserver.storage.database import Database

MAX_DEVICE_ID_LENGTH = 255
EVENTS_PER_BATCH = 100


class DehydratedDevices:
    def __init__(self, database: Database, e2ee: EndToEnd) -> None:
        self.database = database
        self.e2ee = e2ee

    async def get(self, requester: Requester) -> dict[str, Any]:
        found = await store.get(self.database.pool, requester.user_id)
        if found is None:
            raise not_found("No dehydrated device available")
        return {"device_id": found[0], "device_data": found[1]}

    async def put(self, requester: Requester, body: dict[str, Any]) -> dict[str, Any]:
        user_id = requester.user_id
        device_id = body.get("device_id")
        if not isinstance(device_id, str) or not device_id or len(device_id) > MAX_DEVICE_ID_LENGTH:
            raise MatrixError(400, "M_MISSING_PARAM" if device_id is None else "M_INVALID_PARAM",
                              "device_id must be a device id")
        device_data = body.get("device_data")
        if not isinstance(device_data, dict):
            raise bad_json("device_data must be an object")
        name = body.get("initial_device_display_name")
        if name is not None and not isinstance(name, str):
            raise bad_json("initial_device_display_name must be a string")
        device_keys = body.get("device_keys")
        if device_keys is None:
            raise MatrixError(400, "M_MISSING_PARAM", "device_keys are required")
        self.e2ee.check_device_keys(device_keys, user_id, device_id)
        one_time = self.e2ee.parse_keys(body.get("one_time_keys"), "one_time_keys")
        fallback = self.e2ee.parse_keys(body.get("fallback_keys"), "fallback_keys")
        async with self.database.stream_lock("device_lists"), self.database.pool.acquire() as conn, conn.transaction():
            previous = await store.get(conn, user_id)
            if await device_store.get_device(conn, user_id, device_id) is not None \
                    and (previous is None or previous[0] != device_id):
                raise invalid_param("device_id names one of your existing devices")
            if previous is not None and previous[0] != device_id:
                await self._delete_device(conn, user_id, previous[0])
            await device_store.ensure_device(conn, user_id, device_id, name)
            await store.put(conn, user_id, device_id, device_data)
            await self.e2ee.store_keys(conn, user_id, device_id, device_keys, one_time, fallback)
            await self.e2ee.mark_changed(conn, user_id)
        await self.e2ee.wake_sharers(user_id)
        return {"device_id": device_id}

    async def delete(self, requester: Requester) -> dict[str, Any]:
        async with self.database.stream_lock("device_lists"), self.database.pool.acquire() as conn, conn.transaction():
            found = await store.get(conn, requester.user_id)
            if found is None:
                raise not_found("No dehydrated device available")
            await self._delete_device(conn, requester.user_id, found[0])
            await self.e2ee.mark_changed(conn, requester.user_id)
        await self.e2ee.wake_sharers(requester.user_id)
        return {"device_id": found[0]}

    @staticmethod
    async def _delete_device(conn: Any, user_id: str, device_id: str) -> None:
        await device_store.delete_devices(conn, user_id, [device_id])
        await e2ee_store.delete_device_e2ee(conn, user_id, [device_id])

    async def events(self, requester: Requester, device_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """The next batch of the dehydrated device's to-device messages; `next_batch` from the
        previous answer acknowledges (deletes) what it returned."""
        found = await store.get(self.database.pool, requester.user_id)
        if found is None:
            raise not_found("No dehydrated device available")
        if found[0] != device_id:
            raise forbidden("You may only fetch messages for your dehydrated device")
        token = body.get("next_batch")
        if token is not None and not (isinstance(token, str) and token.isdigit()):
            raise invalid_param("Invalid next_batch")
        acknowledged = int(token) if token is not None else 0
        async with self.database.pool.acquire() as conn, conn.transaction():
            messages = await e2ee_store.to_device_for(conn, requester.user_id, device_id, acknowledged,
                                                      EVENTS_PER_BATCH)
        return {"events": [m for _s, m in messages],
                "next_batch": str(messages[-1][0] if messages else acknowledged)}
