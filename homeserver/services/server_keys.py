"""Our published server key document (`GET /_matrix/key/v2/server`)."""

from __future__ import annotations

import time

from nacl.signing import SigningKey
from signedjson.key import encode_verify_key_base64, get_verify_key
from signedjson.sign import sign_json

# How long other servers may cache our key document; Synapse uses one day too.
KEY_VALIDITY_MS = 24 * 60 * 60 * 1000


class ServerKeys:
    """The signing key and the self-signed document that publishes its public half."""

    def __init__(self, server_name: str, signing_key: SigningKey) -> None:
        self.server_name = server_name
        self.signing_key = signing_key
        self.key_id = f"{signing_key.alg}:{signing_key.version}"

    def key_document(self, now_ms: int | None = None) -> dict:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        verify_key = get_verify_key(self.signing_key)
        document = {
            "server_name": self.server_name,
            "verify_keys": {self.key_id: {"key": encode_verify_key_base64(verify_key)}},
            "old_verify_keys": {},
            "valid_until_ts": now_ms + KEY_VALIDITY_MS,
        }
        return sign_json(document, self.server_name, self.signing_key)
