"""Delivery of notifications to push gateways (push gateway API, `/_matrix/push/v1/notify`, as
Sygnal speaks it).

Runs in background tasks so that sending a message never waits for a gateway.
Failed deliveries (network errors, 5xx, 429) are retried with growing delays;
other 4xx answers are given up on; pushkeys the gateway lists as `rejected` have
their pusher deleted, as the spec asks. Retries live in memory: a restart drops
the ones still pending.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from homeserver.storage import push as push_store
from homeserver.storage.database import Database

logger = logging.getLogger(__name__)

RETRY_DELAYS_S = (1.0, 5.0, 30.0, 120.0, 600.0)
REQUEST_TIMEOUT_S = 20.0


def _tweaks(actions: list[Any]) -> dict[str, Any]:
    return {a["set_tweak"]: a.get("value", True) for a in actions if isinstance(a, dict) and "set_tweak" in a}


def notification_body(
    event: dict[str, Any], pusher: dict[str, Any], actions: list[Any], unread: int, sender_name: str | None,
    room_name: str | None,
) -> dict[str, Any]:
    """The gateway request for one pusher; `event_id_only` pushers get ids and counts only."""
    tweaks = _tweaks(actions)
    data = {k: v for k, v in pusher["data"].items() if k != "url"}
    notification: dict[str, Any] = {
        "id": event["event_id"],  # the older name, still read by some gateways (Synapse sends both)
        "event_id": event["event_id"],
        "room_id": event["room_id"],
        "counts": {"unread": unread},
        "prio": "high" if tweaks.get("highlight") or "sound" in tweaks else "low",
        "devices": [{"app_id": pusher["app_id"], "pushkey": pusher["pushkey"], "pushkey_ts": pusher.get("pushkey_ts", 0),
                     "data": data, "tweaks": tweaks}],
    }
    if data.get("format") != "event_id_only":
        notification.update({"type": event["type"], "sender": event["sender"], "content": event.get("content", {})})
        if sender_name:
            notification["sender_display_name"] = sender_name
        if room_name:
            notification["room_name"] = room_name
        if "state_key" in event and event["type"] == "m.room.member":
            notification["user_is_target"] = event["state_key"] == pusher["user_id"]
            notification["membership"] = event["content"].get("membership")
    return {"notification": notification}


def badge_body(pusher: dict[str, Any], badge: int) -> dict[str, Any]:
    """A notification of nothing but the new badge count (Synapse's shape: no event, empty ids)."""
    data = {k: v for k, v in pusher["data"].items() if k != "url"}
    return {"notification": {
        "id": "", "type": None, "sender": "", "counts": {"unread": badge},
        "devices": [{"app_id": pusher["app_id"], "pushkey": pusher["pushkey"], "pushkey_ts": pusher.get("pushkey_ts", 0),
                     "data": data}],
    }}


class PushGateway:
    def __init__(
        self, database: Database, retry_delays: tuple[float, ...] = RETRY_DELAYS_S, verify_tls: bool = True
    ) -> None:
        self.verify_tls = verify_tls
        self.database = database
        self.retry_delays = retry_delays
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._badges: dict[tuple[str, str, str], int] = {}
        """The badge each pusher was last sent (in memory: after a restart one more is sent)."""

    def schedule(
        self, event: dict[str, Any], actions_by_user: dict[str, list[Any]], sender_name: str | None,
        room_name: str | None,
    ) -> None:
        """Send `event` to the HTTP pushers of the users it notifies, in the background."""
        task = asyncio.get_running_loop().create_task(self._send_all(event, actions_by_user, sender_name, room_name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_all(
        self, event: dict[str, Any], actions_by_user: dict[str, list[Any]], sender_name: str | None,
        room_name: str | None,
    ) -> None:
        pushers = await push_store.http_pushers_of(self.database.pool, sorted(actions_by_user))
        if not pushers:
            return
        badges = await push_store.rooms_with_unread(self.database.pool, sorted({p["user_id"] for p in pushers}))
        for pusher in pushers:
            self._badges[(pusher["user_id"], pusher["app_id"], pusher["pushkey"])] = badges.get(pusher["user_id"], 0)
        await asyncio.gather(*(
            self._deliver(pusher, notification_body(event, pusher, actions_by_user[pusher["user_id"]],
                                                    badges.get(pusher["user_id"], 0), sender_name, room_name))
            for pusher in pushers
        ))

    def update_badge(self, user_id: str) -> None:
        """After the user read something: tell their pushers the new badge (rooms with unread
        notifications) when it changed, so phones clear it (as Synapse's badge-only push)."""
        task = asyncio.get_running_loop().create_task(self._send_badge(user_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_badge(self, user_id: str) -> None:
        pushers = await push_store.http_pushers_of(self.database.pool, [user_id])
        if not pushers:
            return
        badge = (await push_store.rooms_with_unread(self.database.pool, [user_id])).get(user_id, 0)
        changed = []
        for pusher in pushers:
            key = (user_id, pusher["app_id"], pusher["pushkey"])
            if self._badges.get(key) != badge:
                self._badges[key] = badge
                changed.append(pusher)
        await asyncio.gather(*(self._deliver(pusher, badge_body(pusher, badge)) for pusher in changed))

    async def _deliver(self, pusher: dict[str, Any], body: dict[str, Any]) -> None:
        url = pusher["data"]["url"]
        for attempt in range(len(self.retry_delays) + 1):
            if attempt:
                await asyncio.sleep(self.retry_delays[attempt - 1])
            try:
                async with self._http().post(url, json=body) as resp:
                    if resp.status < 300:
                        answer = await resp.json(content_type=None)
                        rejected = answer.get("rejected", []) if isinstance(answer, dict) else []
                        if pusher["pushkey"] in rejected:
                            logger.info("push gateway rejected pushkey of %s; deleting the pusher", pusher["user_id"])
                            await push_store.delete_pusher(self.database.pool, pusher["user_id"], pusher["app_id"],
                                                           pusher["pushkey"])
                        return
                    if 400 <= resp.status < 500 and resp.status != 429:
                        logger.warning("push gateway %s refused a notification: HTTP %d", url, resp.status)
                        return
                    logger.info("push gateway %s answered HTTP %d; will retry", url, resp.status)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                logger.info("push gateway %s unreachable (%s); will retry", url, exc)
        logger.warning("giving up on a notification for %s after %d attempts", pusher["user_id"],
                       len(self.retry_delays) + 1)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
                connector=aiohttp.TCPConnector(ssl=None if self.verify_tls else False),
            )
        return self._session

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
