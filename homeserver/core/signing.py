"""Signing and verifying JSON with ed25519 (appendices: Signing JSON).

Signed bytes are the canonical JSON of the object without `signatures` and
`unsigned`. PyNaCl does the cryptography; our canonical encoder the bytes, so
results are identical to `signedjson`'s, only faster.
"""

from __future__ import annotations

from typing import Any, Callable

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey
from unpaddedbase64 import decode_base64, encode_base64

from homeserver.core.canonical_json import encode_canonical_json

Encoder = Callable[[Any], bytes]


class SignatureError(ValueError):
    """A signature is missing, malformed or does not verify."""


def signed_bytes(obj: dict[str, Any], encode: Encoder = encode_canonical_json) -> bytes:
    """The bytes a signature covers."""
    return encode({k: v for k, v in obj.items() if k != "signatures" and k != "unsigned"})


def key_id_of(key: SigningKey) -> str:
    """`ed25519:<version>` for a signedjson-style key (one with `alg` and `version`)."""
    return f"{getattr(key, 'alg', 'ed25519')}:{key.version}"  # type: ignore[attr-defined]


def sign_json(
    obj: dict[str, Any], signing_name: str, key: SigningKey, encode: Encoder = encode_canonical_json
) -> dict[str, Any]:
    """A copy of `obj` with our signature added beside any existing ones."""
    signature = encode_base64(key.sign(signed_bytes(obj, encode)).signature)
    signatures = {name: dict(sigs) for name, sigs in obj.get("signatures", {}).items()}
    signatures.setdefault(signing_name, {})[key_id_of(key)] = signature
    return {**obj, "signatures": signatures}


def signature_of(obj: dict[str, Any], signing_name: str, key_id: str) -> bytes:
    """The decoded signature by `signing_name` with `key_id`, or SignatureError."""
    signatures = obj.get("signatures")
    if not isinstance(signatures, dict):
        raise SignatureError("no signatures")
    by_name = signatures.get(signing_name)
    if not isinstance(by_name, dict):
        raise SignatureError(f"not signed by {signing_name}")
    encoded = by_name.get(key_id)
    if not isinstance(encoded, str):
        raise SignatureError(f"no signature by {signing_name} with key {key_id}")
    try:
        return decode_base64(encoded)
    except Exception:
        raise SignatureError(f"signature by {signing_name} with {key_id} is not base64") from None


def verify_json(
    obj: dict[str, Any],
    signing_name: str,
    key_id: str,
    verify_key: VerifyKey,
    encode: Encoder = encode_canonical_json,
) -> None:
    """Raise SignatureError unless `signing_name` signed `obj` with `verify_key`."""
    signature = signature_of(obj, signing_name, key_id)
    try:
        verify_key.verify(signed_bytes(obj, encode), signature)
    except (BadSignatureError, ValueError, TypeError):
        raise SignatureError(f"signature by {signing_name} with {key_id} does not verify") from None


def ed25519_key_ids(obj: dict[str, Any], signing_name: str) -> list[str]:
    """The ed25519 key ids `signing_name` signed with (other algorithms are ignored)."""
    by_name = obj.get("signatures", {}).get(signing_name)
    if not isinstance(by_name, dict):
        return []
    return [k for k in by_name if isinstance(k, str) and k.startswith("ed25519:")]
