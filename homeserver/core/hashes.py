"""Content hashes, reference hashes and the event and room ids derived from them.

Server-server API "Calculating the content hash" and "Calculating the reference
hash"; appendices "Event IDs"; rooms/v3, v4 and v12 for the id formats.
"""

from __future__ import annotations

import hashlib
from typing import Any

from nacl.signing import SigningKey, VerifyKey
from unpaddedbase64 import decode_base64, encode_base64

from homeserver.core.canonical_json import (
    encode_canonical_json,
    encode_canonical_json_lenient,
    encode_canonical_json_prechecked,
)
from homeserver.core.redaction import redact
from homeserver.core.room_versions import EventFormat, RoomVersion
from homeserver.core.signing import Encoder, sign_json, verify_json

_NOT_HASHED = ("unsigned", "signatures", "hashes")


def encoder_for(version: RoomVersion) -> Encoder:
    """Room versions before 6 tolerate floats and big integers in events."""
    return encode_canonical_json if version.strict_canonical_json else encode_canonical_json_lenient


def prechecked_encoder_for(version: RoomVersion) -> Encoder:
    """The encoder for parts of an event that already passed the format checks."""
    return encode_canonical_json_prechecked if version.strict_canonical_json else encode_canonical_json_lenient


def content_hash(pdu: dict[str, Any], version: RoomVersion, encode: Encoder | None = None) -> bytes:
    """SHA-256 of the event without `unsigned`, `signatures` and `hashes`."""
    encode = encode or encoder_for(version)
    return hashlib.sha256(encode({k: v for k, v in pdu.items() if k not in _NOT_HASHED})).digest()


def add_content_hash(pdu: dict[str, Any], version: RoomVersion) -> dict[str, Any]:
    """A copy of `pdu` with `hashes.sha256` set."""
    return {**pdu, "hashes": {"sha256": encode_base64(content_hash(pdu, version))}}


def check_content_hash(pdu: dict[str, Any], version: RoomVersion, encode: Encoder | None = None) -> bool:
    """True if `hashes.sha256` matches the content (a mismatch means: keep the redacted form)."""
    hashes = pdu.get("hashes")
    if not isinstance(hashes, dict) or not isinstance(hashes.get("sha256"), str):
        return False
    try:
        claimed = decode_base64(hashes["sha256"])
    except Exception:
        return False
    return claimed == content_hash(pdu, version, encode)


def reference_hash(pdu: dict[str, Any], version: RoomVersion) -> bytes:
    """SHA-256 of the redacted event without `signatures`, `unsigned` and `age_ts`."""
    redacted = redact(pdu, version)
    redacted.pop("signatures", None)
    redacted.pop("age_ts", None)
    return hashlib.sha256(encoder_for(version)(redacted)).digest()


def urlsafe(b64: str) -> str:
    return b64.replace("+", "-").replace("/", "_")


def compute_event_id(pdu: dict[str, Any], version: RoomVersion) -> str:
    """The event id of a v3+ event; v1/v2 events carry theirs in `event_id`."""
    if version.event_format is EventFormat.V1:
        event_id = pdu.get("event_id")
        if not isinstance(event_id, str):
            raise ValueError("room versions 1 and 2 need an event_id in the event")
        return event_id
    encoded = encode_base64(reference_hash(pdu, version))
    return "$" + (encoded if version.event_format is EventFormat.V2 else urlsafe(encoded))


def room_id_from_create_event_id(event_id: str) -> str:
    """Room version 12: the room id is the create event's id with the `!` sigil."""
    return "!" + event_id[1:]


def sign_event(
    pdu: dict[str, Any], version: RoomVersion, server_name: str, key: SigningKey
) -> dict[str, Any]:
    """Hash and sign a new event: the signature covers the redacted form."""
    hashed = add_content_hash(pdu, version)
    redacted_signed = sign_json(redact(hashed, version), server_name, key, encoder_for(version))
    return {**hashed, "signatures": redacted_signed["signatures"]}


def verify_event_signature(
    pdu: dict[str, Any], version: RoomVersion, server_name: str, key_id: str, verify_key: VerifyKey
) -> None:
    """Raise SignatureError unless `server_name` signed the redacted form of the event."""
    verify_json(redact(pdu, version), server_name, key_id, verify_key, encoder_for(version))
