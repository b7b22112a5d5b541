"""Wakes long-polling syncs when something they watch moves.

A sync registers interest (`listen`) *before* it looks for news, then waits
on the future; `notify(users)` resolves those users' futures. So an event
persisted between the look and the wait still wakes it. Positions live in the
streams themselves; a wake-up carries nothing. In several processes,
`notify` is what a LISTEN/NOTIFY transport would call.
"""

from __future__ import annotations

import asyncio
from typing import Iterable


class Notifier:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}

    def listen(self, user_id: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(user_id, set()).add(future)
        return future

    def forget(self, user_id: str, future: asyncio.Future[None]) -> None:
        waiters = self._waiters.get(user_id)
        if waiters is not None:
            waiters.discard(future)
            if not waiters:
                del self._waiters[user_id]

    def notify(self, user_ids: Iterable[str]) -> None:
        for user_id in user_ids:
            for future in self._waiters.pop(user_id, ()):
                if not future.done():
                    future.set_result(None)
