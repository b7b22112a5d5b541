"""Outbound federation queues: one worker per destination, sending transactions.

PDUs are queued in the transaction that persists the event
(`federation_pdu_queue`), EDUs in `federation_edu_queue`, so a restart loses
nothing: at start-up every destination with queued rows gets a worker. A
worker sends transactions of at most 50 PDUs and 100 EDUs until its queues
are empty. An unreachable destination is retried after
`destination_min_retry_interval`, multiplied by `destination_retry_multiplier`
at each failure up to `destination_max_retry_interval` (persisted, so a
restart keeps the backoff). When it answers again after a backoff with a long
backlog, only the newest queued event of each room is sent (catch-up): the
receiver fetches what lies between with `/get_missing_events`. A request
from a server we were backing off from ends the backoff.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any, Iterable

import orjson

from homeserver.config import Config
from homeserver.federation.client import FederationClient, FederationError, Unreachable, encode_path
from homeserver.storage import federation as store
from homeserver.storage.database import Database

logger = logging.getLogger(__name__)

MAX_PDUS = 50
MAX_EDUS = 100


class FederationSender:
    def __init__(self, config: Config, database: Database, client: FederationClient) -> None:
        self.server_name = config.server_name
        self.database = database
        self.client = client
        self.min_retry_ms = int(config.federation.destination_min_retry_interval)
        self.max_retry_ms = int(config.federation.destination_max_retry_interval)
        self.multiplier = config.federation.destination_retry_multiplier
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._alive: dict[str, asyncio.Event] = {}
        self._txn_ids = itertools.count()
        self._stopping = False

    async def start(self) -> None:
        """Resume the queues left by the previous run."""
        self.wake(await store.destinations_with_queues(self.database.pool))

    async def stop(self) -> None:
        self._stopping = True
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    def wake(self, destinations: Iterable[str]) -> None:
        """Something was queued for these destinations."""
        if self._stopping:
            return
        for destination in destinations:
            if destination == self.server_name or not self.client.allowed(destination):
                continue
            if destination in self._workers:
                self._again.add(destination)
                continue
            task = asyncio.get_running_loop().create_task(self._run(destination))
            self._workers[destination] = task
            task.add_done_callback(lambda _t, d=destination: self._finished(d))

    def _finished(self, destination: str) -> None:
        self._workers.pop(destination, None)
        if destination in self._again:
            self._again.discard(destination)
            self.wake([destination])

    def mark_alive(self, server: str) -> None:
        """A request arrived from `server`: if we were waiting to retry it, retry now."""
        event = self._alive.get(server)
        if event is not None:
            event.set()

    async def send_edus(self, destinations: Iterable[str], edu_type: str, content: dict[str, Any]) -> None:
        rows = [(d, edu_type, orjson.dumps(content).decode("utf-8")) for d in set(destinations)
                if d != self.server_name and self.client.allowed(d)]
        if rows:
            await store.enqueue_edus(self.database.pool, rows)
            self.wake(r[0] for r in rows)

    async def _run(self, destination: str) -> None:
        try:
            while not self._stopping:
                self._again.discard(destination)
                retry = await store.destination_retry(self.database.pool, destination)
                if retry is not None and retry["retry_interval_ms"] > 0:
                    wait_ms = retry["retry_last_ts"] + retry["retry_interval_ms"] - int(time.time() * 1000)
                    if wait_ms > 0:
                        await self._wait_alive(destination, wait_ms / 1000)
                    if await store.queued_pdu_count(self.database.pool, destination) > MAX_PDUS:
                        await store.catch_up_pdus(self.database.pool, destination)
                pdus = await store.queued_pdus(self.database.pool, destination, MAX_PDUS)
                edus = await store.queued_edus(self.database.pool, destination, MAX_EDUS)
                if not pdus and not edus:
                    return
                if await self._send(destination, pdus, edus):
                    await store.dequeue(self.database.pool, destination, [p["event_nid"] for p in pdus],
                                        [e["queue_id"] for e in edus])
                    if retry is not None and retry["retry_interval_ms"] > 0:
                        await store.set_destination_retry(self.database.pool, destination, None, 0, 0)
                        logger.info("%s is reachable again", destination)
                else:
                    previous = retry["retry_interval_ms"] if retry else 0
                    interval = min(self.max_retry_ms, max(self.min_retry_ms, int(previous * self.multiplier)))
                    now = int(time.time() * 1000)
                    await store.set_destination_retry(
                        self.database.pool, destination, (retry or {}).get("failure_ts") or now, now, interval
                    )
                    logger.info("%s unreachable; next try in %.0f s", destination, interval / 1000)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("federation sender for %s failed", destination)

    async def _wait_alive(self, destination: str, seconds: float) -> None:
        """Sleep out the backoff, or less when the destination contacts us meanwhile."""
        event = self._alive.setdefault(destination, asyncio.Event())
        event.clear()
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except asyncio.TimeoutError:
            pass
        finally:
            self._alive.pop(destination, None)

    async def _send(self, destination: str, pdus: list[dict[str, Any]], edus: list[dict[str, Any]]) -> bool:
        """One transaction; True when it was delivered (or refused for good, which drops it)."""
        txn_id = f"{int(time.time() * 1000)}.{next(self._txn_ids)}"
        body = {
            "origin": self.server_name,
            "origin_server_ts": int(time.time() * 1000),
            "pdus": [orjson.loads(p["json"]) for p in pdus],
            "edus": [{"edu_type": e["edu_type"], "content": orjson.loads(e["content"])} for e in edus],
        }
        try:
            answer = await self.client.request(
                "PUT", destination, encode_path("/_matrix/federation/v1/send", txn_id), body=body
            )
        except Unreachable as exc:
            logger.info("transaction to %s failed: %s", destination, exc)
            return False
        except FederationError as exc:
            if exc.status >= 500 or exc.status == 429:
                logger.info("transaction to %s failed: %s", destination, exc)
                return False
            logger.warning("%s refused a transaction (%s); dropping it", destination, exc)
            return True
        results = answer.get("pdus", {}) if isinstance(answer, dict) else {}
        for event_id, result in (results.items() if isinstance(results, dict) else ()):
            if isinstance(result, dict) and result.get("error"):
                logger.info("%s did not accept %s: %s", destination, event_id, result["error"])
        return True
