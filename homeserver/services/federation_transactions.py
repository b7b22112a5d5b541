"""Inbound transactions (`PUT /_matrix/federation/v1/send/{txnId}`).

A retried transaction gets the answer of the first (kept in
`federation_inbound_txns`); concurrent retries wait for it. PDUs of
different rooms are processed in parallel, those of one room in order; each
gets its own result. EDUs go to the handler registered for their type.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable

import orjson

from homeserver.core.events import Event
from homeserver.core.hashes import compute_event_id
from homeserver.errors import MatrixError, bad_json
from homeserver.services.events import EventStore, Room
from homeserver.services.federation_events import FederationEvents, PduError
from homeserver.storage import federation as store
from homeserver.storage.database import Database

logger = logging.getLogger(__name__)

MAX_PDUS = 50
MAX_EDUS = 100
EduHandler = Callable[[str, Any], Awaitable[None]]


def _event_id(pdu: Any, room: Room | None) -> str | None:
    if not isinstance(pdu, dict):
        return None
    if isinstance(pdu.get("event_id"), str):
        return pdu["event_id"]
    if room is None:
        return None
    try:
        return compute_event_id(pdu, room.version)
    except Exception:
        return None


class FederationTransactions:
    def __init__(self, database: Database, store_: EventStore, events: FederationEvents) -> None:
        self.database = database
        self.store = store_
        self.events = events
        self.edu_handlers: dict[str, EduHandler] = {}
        self._in_progress: dict[tuple[str, str], asyncio.Future[dict[str, Any]]] = {}

    async def receive(self, origin: str, txn_id: str, body: dict[str, Any]) -> dict[str, Any]:
        pdus = body.get("pdus", [])
        edus = body.get("edus", [])
        if not isinstance(pdus, list) or not isinstance(edus, list):
            raise bad_json("pdus and edus must be lists")
        if len(pdus) > MAX_PDUS or len(edus) > MAX_EDUS:
            raise bad_json(f"A transaction carries at most {MAX_PDUS} PDUs and {MAX_EDUS} EDUs")
        if "origin" in body and body["origin"] != origin:
            raise MatrixError(400, "M_BAD_JSON", "origin does not match the authenticated server")
        key = (origin, txn_id)
        running = self._in_progress.get(key)
        if running is not None:
            return await asyncio.shield(running)
        done = await store.inbound_txn_response(self.database.pool, origin, txn_id)
        if done is not None:
            return orjson.loads(done)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._in_progress[key] = future
        try:
            result = await self._process(origin, pdus, edus)
            await store.record_inbound_txn(self.database.pool, origin, txn_id, orjson.dumps(result).decode(),
                                           int(time.time() * 1000))
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            del self._in_progress[key]

    async def _process(self, origin: str, pdus: list[Any], edus: list[Any]) -> dict[str, Any]:
        results: dict[str, dict[str, Any]] = {}
        by_room: dict[str, list[Any]] = {}
        for pdu in pdus:
            room_id = pdu.get("room_id") if isinstance(pdu, dict) else None
            if not isinstance(room_id, str):
                continue
            by_room.setdefault(room_id, []).append(pdu)
        await asyncio.gather(*(self._room_pdus(origin, room_id, items, results) for room_id, items in by_room.items()))
        for edu in edus:
            if not isinstance(edu, dict) or not isinstance(edu.get("edu_type"), str):
                continue
            handler = self.edu_handlers.get(edu["edu_type"])
            if handler is None:
                continue
            try:
                await handler(origin, edu.get("content"))
            except MatrixError as exc:
                logger.info("EDU %s from %s refused: %s", edu["edu_type"], origin, exc.message)
            except Exception:
                logger.exception("EDU %s from %s failed", edu["edu_type"], origin)
        return {"pdus": results}

    async def _room_pdus(self, origin: str, room_id: str, pdus: list[Any], results: dict[str, Any]) -> None:
        room = await self.store.room(room_id)
        if room is None:
            for pdu in pdus:
                event_id = _event_id(pdu, None)
                if event_id:
                    results[event_id] = {"error": "Unknown room"}
            return
        try:
            await self.events.check_acl(room, origin)
        except MatrixError as exc:
            for pdu in pdus:
                event_id = _event_id(pdu, room)
                if event_id:
                    results[event_id] = {"error": exc.message}
            return
        checked = await self.events.verify(pdus, room.version)
        for pdu, event in zip(pdus, checked):
            event_id = event.event_id if isinstance(event, Event) else _event_id(pdu, room)
            if isinstance(event, str):
                if event_id:
                    results[event_id] = {"error": event}
                continue
            try:
                # A rejected event was processed: like Synapse, no error for it in the answer.
                await self.events.receive_pdu(origin, room, event)
                results[event.event_id] = {}
            except PduError as exc:
                results[event.event_id] = {"error": str(exc)}
            except Exception:
                logger.exception("PDU %s from %s failed", event.event_id, origin)
                results[event.event_id] = {"error": "internal error"}
