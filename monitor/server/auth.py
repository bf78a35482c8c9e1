"""Authentication before anything is written: Standard Webhooks signatures and bearer keys.

The signature is the one the Standard Webhooks spec defines (HMAC-SHA256 over
`{webhook-id}.{webhook-timestamp}.{body}`, keyed with the base64 secret after `whsec_`,
sent as space-separated `v1,<base64>` entries). Every configured secret is tried so that a
sender can move to a new secret while the old one is still accepted. All comparisons are
constant-time, and an error never says which secret or key came close.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence

from pydantic import SecretStr


class AuthError(Exception):
    """Refused; `reason` is a metrics label, the message is safe to send back."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def secret_key(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret must be whsec_ followed by base64") from None
    if not key:
        raise ValueError("a webhook secret must not be empty")
    return key


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value a sender computes; used by tests and the load bench."""
    mac = hmac.new(secret_key(secret), f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[SecretStr],
    tolerance_s: int,
    now: float | None = None,
) -> str:
    """The webhook-id of a correctly signed, fresh request; raises AuthError otherwise."""
    webhook_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (webhook_id and stamp and signatures):
        raise AuthError(
            "missing_headers",
            "webhook-id, webhook-timestamp and webhook-signature are required (Standard Webhooks)",
        )
    if len(webhook_id) > 256:
        raise AuthError("bad_headers", "webhook-id is longer than 256 characters")
    try:
        ts = int(stamp)
    except ValueError:
        raise AuthError("bad_headers", "webhook-timestamp must be integer Unix seconds") from None
    now = time.time() if now is None else now
    if abs(now - ts) > tolerance_s:
        raise AuthError(
            "stale_timestamp",
            f"webhook-timestamp is more than {tolerance_s} s from the server's clock "
            "(replayed, or the sender's clock is off)",
        )
    offered: list[bytes] = []
    for entry in signatures.split():
        version, _, value = entry.partition(",")
        if version != "v1":
            continue
        try:
            offered.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    signed = f"{webhook_id}.{ts}.".encode() + body
    ok = False
    for secret in secrets:
        expected = hmac.new(secret_key(secret.get_secret_value()), signed, hashlib.sha256).digest()
        for candidate in offered:
            # no early exit: every secret and signature is compared, in constant time each
            ok |= hmac.compare_digest(expected, candidate)
    if not ok:
        raise AuthError("bad_signature", "no webhook-signature matches a configured secret")
    return webhook_id


def verify_bearer(authorization: str | None, keys: Mapping[str, SecretStr]) -> str:
    """The sender whose key the `Authorization: Bearer` header carries."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("missing_headers", "send Authorization: Bearer <key>")
    found = None
    given = token.strip().encode()
    for sender, key in keys.items():
        if hmac.compare_digest(given, key.get_secret_value().encode()) and found is None:
            found = sender
    if found is None:
        raise AuthError("bad_key", "the bearer key is not one this server knows")
    return found
