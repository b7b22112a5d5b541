"""Checks on a PDU received from another server, before any authorization rule.

Server-server API "Checks performed on receipt of a PDU", steps 1-3: a
valid event for its room version, valid signatures of every server that must
sign it, and a matching content hash (on a mismatch the redacted form is kept).

The redacted form is encoded once and serves both the reference hash (the
event id) and every signature check, which is what makes this path fast.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from unpaddedbase64 import encode_base64

from homeserver.core.auth_rules import required_signers
from homeserver.core.event_format import check_pdu_format
from homeserver.core.events import Event
from homeserver.core.hashes import check_content_hash, prechecked_encoder_for, urlsafe
from homeserver.core.redaction import redact
from homeserver.core.room_versions import EventFormat, RoomVersion
from homeserver.core.signing import SignatureError, ed25519_key_ids, signature_of

KeyLookup = Callable[[str, str], "VerifyKey | None"]
"""(server name, key id) -> the server's verify key, or None when unknown."""


@dataclass(frozen=True, slots=True)
class CheckedPdu:
    event: Event
    content_hash_ok: bool
    """False: the hash did not match, and `event` is the redacted form."""


def check_remote_pdu(pdu: Any, version: RoomVersion, lookup_key: KeyLookup) -> CheckedPdu:
    """Format, signatures, content hash; raises FormatError or SignatureError."""
    check_pdu_format(pdu, version)
    encode = prechecked_encoder_for(version)
    redacted = redact(pdu, version)
    redacted.pop("signatures", None)
    signed = encode(redacted)
    if version.event_format is EventFormat.V1:
        event_id = pdu["event_id"]
    else:
        if "age_ts" in redacted:
            digest = hashlib.sha256(encode({k: v for k, v in redacted.items() if k != "age_ts"})).digest()
        else:
            digest = hashlib.sha256(signed).digest()
        encoded = encode_base64(digest)
        event_id = "$" + (encoded if version.event_format is EventFormat.V2 else urlsafe(encoded))
    event = Event(pdu, version, event_id=event_id)
    for server in required_signers(event):
        _verify_any_key(pdu, server, signed, lookup_key)
    if check_content_hash(pdu, version, encode):
        return CheckedPdu(event, True)
    return CheckedPdu(Event(redact(pdu, version), version, event_id=event_id), False)


def _verify_any_key(pdu: dict[str, Any], server: str, signed: bytes, lookup_key: KeyLookup) -> None:
    """One valid signature by `server` with a key we know suffices."""
    key_ids = ed25519_key_ids(pdu, server)
    if not key_ids:
        raise SignatureError(f"not signed by {server}")
    for key_id in key_ids:
        verify_key = lookup_key(server, key_id)
        if verify_key is None:
            continue
        try:
            verify_key.verify(signed, signature_of(pdu, server, key_id))
            return
        except (BadSignatureError, ValueError, TypeError, SignatureError):
            raise SignatureError(f"signature by {server} with {key_id} does not verify") from None
    raise SignatureError(f"no known key of {server} among {key_ids}")
