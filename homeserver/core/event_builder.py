"""Building new events: auth-event selection, references, depth, hashes and signature.

One function for every event this server creates (local sends, joins,
invites); the caller supplies the time, the state and the forward
extremities, so this stays pure.
"""

from __future__ import annotations

import secrets
import string
from typing import Any, Iterable

from nacl.signing import SigningKey
from unpaddedbase64 import encode_base64

from homeserver.core.auth_rules import auth_types_for_event
from homeserver.core.events import Event
from homeserver.core.hashes import reference_hash, sign_event
from homeserver.core.power_levels import StateMap
from homeserver.core.room_versions import EventFormat, RoomVersion

_ID_CHARS = string.ascii_letters + string.digits


def select_auth_events(
    version: RoomVersion,
    event_type: str,
    sender: str,
    state_key: str | None,
    content: dict[str, Any],
    state: StateMap,
) -> list[Event]:
    """The auth events a new event cites: the selection algorithm applied to `state`."""
    keys = auth_types_for_event(version, event_type, sender, state_key, content)
    return [state[key] for key in sorted(keys) if key in state]


def _references(events: Iterable[Event], version: RoomVersion) -> list[Any]:
    if version.event_format is EventFormat.V1:
        return [
            [e.event_id, {"sha256": encode_base64(reference_hash(e.pdu, version))}] for e in events
        ]
    return [e.event_id for e in events]


def event_template(
    version: RoomVersion,
    *,
    server_name: str,
    sender: str,
    event_type: str,
    content: dict[str, Any],
    origin_server_ts: int,
    room_id: str | None,
    prev_events: list[Event],
    auth_events: list[Event],
    state_key: str | None = None,
    redacts: str | None = None,
) -> dict[str, Any]:
    """A new event without hashes, signatures or (v3+) event id: what `make_join`, `make_leave`
    and `make_knock` hand to the joining server to sign. `room_id` is None only for a v12 create
    event."""
    pdu: dict[str, Any] = {
        "type": event_type,
        "sender": sender,
        "content": content,
        "origin_server_ts": origin_server_ts,
        "depth": min(max((e.depth for e in prev_events), default=0) + 1, 2**63 - 1),
        "prev_events": _references(prev_events, version),
        "auth_events": _references(auth_events, version),
    }
    if room_id is not None:
        pdu["room_id"] = room_id
    if state_key is not None:
        pdu["state_key"] = state_key
    if redacts is not None:
        if version.updated_redaction_rules:
            pdu["content"] = {**content, "redacts": redacts}
        pdu["redacts"] = redacts
    if not version.updated_redaction_rules:
        pdu["origin"] = server_name
    return pdu


def sign_template(pdu: dict[str, Any], version: RoomVersion, server_name: str, signing_key: SigningKey) -> Event:
    """Hash and sign an event template (ours, or one another server made for us to sign)."""
    pdu = {k: v for k, v in pdu.items() if k not in ("hashes", "signatures", "unsigned")}
    if version.event_format is EventFormat.V1 and "event_id" not in pdu:
        pdu["event_id"] = "$" + "".join(secrets.choice(_ID_CHARS) for _ in range(18)) + ":" + server_name
    return Event(sign_event(pdu, version, server_name, signing_key), version)


def build_event(
    version: RoomVersion,
    *,
    server_name: str,
    signing_key: SigningKey,
    unsigned: dict[str, Any] | None = None,
    **fields: Any,
) -> Event:
    """Create, hash and sign an event (the fields of `event_template`)."""
    event = sign_template(event_template(version, server_name=server_name, **fields), version, server_name,
                          signing_key)
    if unsigned:
        event = Event({**event.pdu, "unsigned": unsigned}, version, event_id=event.event_id)
    return event
