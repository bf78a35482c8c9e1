"""Base64 payloads (screenshots, files) are hashed and dropped before a trace is parsed.

Screenshots are 90%+ of a computer-use dump's bytes. Replacing them in the raw bytes, before
JSON parsing, means the parser never builds those multi-megabyte strings, so memory per
interaction follows the trace's text rather than its images. What is left in their place is a
short marker string that adapters turn into an `Attachment` (media type, size, sha256).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any

from tracewatch.monitor.models import Attachment

MARKER_PREFIX = "tw-blob:"
# Long enough that ids, hashes and tokens in traces are never taken for a blob.
MIN_BLOB_CHARS = 256

# A JSON string whose whole value is a data: URL or a bare base64 run.
_RAW_BLOB = re.compile(
    rb'"(data:([A-Za-z0-9.+/-]+)(?:;[A-Za-z0-9=._+-]+)*;base64,)?'
    rb'([A-Za-z0-9+/\\]{%d,}={0,2})(?<!\\)"' % MIN_BLOB_CHARS
)
_DATA_URL = re.compile(r"^data:([A-Za-z0-9.+/-]+)(?:;[A-Za-z0-9=._+-]+)*;base64,(.*)$", re.S)
_B64_CHARS = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_MARKER = re.compile(r"^tw-blob:([^:]+):(\d+):([0-9a-f]{64})$")

_MAGIC = (
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"%PDF", "application/pdf"),
)


def _sniff(data: bytes) -> str:
    for magic, media in _MAGIC:
        if data.startswith(magic):
            return media
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def _attachment_from_b64(b64: bytes | str, media_type: str | None) -> Attachment | None:
    if isinstance(b64, str):
        b64 = b64.encode("ascii", "ignore")
    # JSON may escape "/" as "\/" and wrap long base64 with "\n".
    b64 = b64.replace(b"\\/", b"/").replace(b"\\n", b"")
    try:
        data = base64.b64decode(b64 + b"=" * (-len(b64) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return Attachment(
        media_type=media_type or _sniff(data[:16]),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def marker(att: Attachment) -> str:
    return f"{MARKER_PREFIX}{att.media_type}:{att.size}:{att.sha256}"


def strip_blobs(raw: bytes) -> bytes:
    """Replace every long base64 JSON string in raw JSON bytes with a blob marker."""
    if len(raw) < MIN_BLOB_CHARS:
        return raw

    def repl(m: re.Match[bytes]) -> bytes:
        media = m.group(2).decode() if m.group(2) else None
        att = _attachment_from_b64(m.group(3), media)
        if att is None:
            return m.group(0)
        return b'"' + marker(att).encode() + b'"'

    return _RAW_BLOB.sub(repl, raw)


def as_attachment(value: Any) -> Attachment | None:
    """An Attachment if `value` is a blob marker, a data: URL or a long base64 string."""
    if not isinstance(value, str):
        return None
    if value.startswith(MARKER_PREFIX):
        m = _MARKER.match(value)
        if m:
            return Attachment(media_type=m.group(1), size=int(m.group(2)), sha256=m.group(3))
        return None
    if value.startswith("data:"):
        m = _DATA_URL.match(value)
        if m:
            return _attachment_from_b64(m.group(2), m.group(1))
        return None
    if len(value) >= MIN_BLOB_CHARS and _B64_CHARS.match(value):
        return _attachment_from_b64(value, None)
    return None


def scrub(value: Any, found: list[Attachment]) -> Any:
    """Copy of a JSON value with every blob replaced by its marker; blobs are appended to found."""
    if isinstance(value, str):
        att = as_attachment(value)
        if att is not None:
            found.append(att)
            return marker(att)
        return value
    if isinstance(value, dict):
        return {k: scrub(v, found) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, found) for v in value]
    return value
