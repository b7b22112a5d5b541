"""Which membership events each device has been sent, so lazy-loading syncs do not repeat them.

With `lazy_load_members` a sync sends the members a client needs to show the timeline;
unless the filter sets `include_redundant_members`, one it has already been sent (the same
event) is left out of the next incremental syncs. Kept in memory per device, bounded and
forgotten when idle, as Synapse does: after a restart or eviction a client is sent a member
again, which is harmless (only redundant).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Callable

MAX_MEMBERS_PER_DEVICE = 100
FORGET_IDLE_DEVICE_S = 30 * 60

Device = tuple[str, str | None]


class SentMembers:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._devices: dict[Device, tuple[float, OrderedDict[str, str]]] = {}
        self._next_expiry = clock() + FORGET_IDLE_DEVICE_S

    def forget(self, device: Device) -> None:
        """A sync without a token starts over: the client keeps nothing from before."""
        self._devices.pop(device, None)

    def already_sent(self, device: Device, user_id: str, event_id: str) -> bool:
        entry = self._devices.get(device)
        return entry is not None and entry[1].get(user_id) == event_id

    def record(self, device: Device, members: dict[str, str]) -> None:
        """Remember the membership events (user id -> event id) just sent to a device."""
        if not members:
            return
        now = self._clock()
        self._expire(now)
        sent = self._devices[device][1] if device in self._devices else OrderedDict()
        for user_id, event_id in members.items():
            sent[user_id] = event_id
            sent.move_to_end(user_id)
        while len(sent) > MAX_MEMBERS_PER_DEVICE:
            sent.popitem(last=False)
        self._devices[device] = (now, sent)

    def _expire(self, now: float) -> None:
        if now < self._next_expiry:
            return
        self._next_expiry = now + FORGET_IDLE_DEVICE_S / 10
        idle = [d for d, (used, _sent) in self._devices.items() if now - used > FORGET_IDLE_DEVICE_S]
        for device in idle:
            del self._devices[device]
