"""Redaction and keyed pseudonyms, applied before any text leaves an interaction.

Secrets and personal data are replaced by typed placeholders that carry a keyed hash
(HMAC-SHA256 with a per-deployment key): `[EMAIL:3f9a1c2b7d]`. The same email on forty
sign-ups gets the same placeholder forty times, so aggregation still sees the reuse, while the
email itself never reaches a summary, a prompt, a report or a log line. Without the key the
placeholder cannot be reversed by guessing common values.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

KEY_ENV = "TRACEWATCH_REDACTION_KEY"
MEMO_SIZE = 2048  # redacted texts a redactor remembers (each at most a few KB)

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}\b")
_PHONE = re.compile(
    # not part of a longer run of digit groups (tracking or order numbers)
    r"(?<![\w+])(?<!\d[\s.-])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])"
    r"\d{3,4}[\s.-]?\d{3,4}(?!\w)(?![\s.-]\d)"
)
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_SECRET_TOKENS = re.compile(
    r"\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{30,}|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"
    r"\.[A-Za-z0-9_-]{5,}|glpat-[A-Za-z0-9_-]{20,}|sk_(?:live|test)_[A-Za-z0-9]{16,})\b"
)
_BEARER = re.compile(
    r"(?i)(?<!\[)\b(bearer|token|api[_-]?key|secret|access[_-]?key)(\s*[:=]\s*|\s+)(?!\[)"
    r"([^\s,;\"']{8,})"
)
_PASSWORD_KV = re.compile(
    r"(?i)(?<!\[)\b(pass(?:word|wd|code)?|pwd|pin)(\s*[:=]\s*|\s+is\s+)(?!\[)([^\s,;\"']{3,})"
)
_STREET = re.compile(
    r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|"
    r"Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Close|Square|Sq)\b\.?(?:,?\s*(?:Apt|Unit|Suite)\s*\w+)?"
)
_PLACEHOLDER = re.compile(r"\[(EMAIL|PHONE|CARD|SECRET|PASSWORD|ADDRESS|USER):[0-9a-f]{10}\]")


def _bounded(value: str) -> str:
    """A pattern for one secret value that does not match inside a longer word."""
    head = r"(?<![\w])" if value[0].isalnum() or value[0] == "_" else ""
    tail = r"(?![\w])" if value[-1].isalnum() or value[-1] == "_" else ""
    return f"{head}{re.escape(value)}{tail}"


def _luhn(digits: str) -> bool:
    total, alt = 0, False
    for ch in reversed(digits):
        d = int(ch)
        if alt:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        alt = not alt
    return total % 10 == 0


def load_key(db_path: str | None = None) -> bytes:
    """The deployment key: $TRACEWATCH_REDACTION_KEY, else a 0600 key file beside the database.

    The key file is created on first use, so pseudonyms stay stable across runs against one
    database while two deployments never share them.
    """
    env = os.environ.get(KEY_ENV)
    if env:
        return env.encode()
    if not db_path or db_path == ":memory:":
        return secrets.token_bytes(32)
    key_file = Path(f"{db_path}.key")
    if key_file.exists():
        key = key_file.read_bytes()
        if key:
            return key
        # Empty: a crash between create and write under an older version. No pseudonym can
        # have been made with an empty key (the Redactor refuses one), so it is replaced.
    return _write_key(key_file, secrets.token_hex(32).encode())


def _write_key(key_file: Path, key: bytes) -> bytes:
    """Write the key so that the file is either absent or whole: a 0600 temporary file,
    fsynced, then renamed over the name. If another process won the race, its key is used."""
    fd, tmp = tempfile.mkstemp(prefix=f".{key_file.name}.", dir=key_file.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
        if key_file.exists() and key_file.stat().st_size:
            return key_file.read_bytes()  # another process wrote it meanwhile
        os.replace(tmp, key_file)
        dir_fd = os.open(key_file.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return key


class Redactor:
    """Replaces secrets and personal data in text with keyed, typed placeholders."""

    def __init__(self, key: bytes, known: Iterable[str] = (), scope: str | None = None) -> None:
        if not key:
            raise ValueError("redaction key must not be empty")
        self._key = key
        self.scope = scope  # the content hash of the interaction whose secrets it knows
        values = sorted({v for v in known if v}, key=lambda v: (-len(v), v))
        self._known = frozenset(values)
        self._known_re = re.compile("|".join(map(_bounded, values))) if values else None
        # The same text is redacted again and again (a page's text for each facet read from
        # it, a stock prompt in every interaction); the result depends only on the text.
        self._memo: dict[str, str] = {}

    def with_secrets(self, values: Iterable[str], scope: str | None = None) -> Redactor:
        """The same key, also replacing these values (one interaction's secrets) wherever
        they appear, whatever surrounds them."""
        return Redactor(self._key, values, scope)

    @property
    def secrets(self) -> frozenset[str]:
        return self._known

    def pseudonym(self, kind: str, value: str) -> str:
        norm = (
            value.strip().lower() if kind in ("EMAIL", "USER") else re.sub(r"[\s().-]", "", value)
        )
        digest = hmac.new(self._key, f"{kind}\x1f{norm}".encode(), hashlib.sha256).hexdigest()
        return f"[{kind}:{digest[:10]}]"

    def redact(self, text: str | None) -> str | None:
        if not text:
            return text
        done = self._memo.get(text)
        if done is None:
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            done = self._memo[text] = self._redact(text)
        return done

    def _redact(self, text: str) -> str:
        if self._known_re is not None:
            text = self._known_re.sub(lambda m: self.pseudonym("PASSWORD", m.group(0)), text)
        out = _SECRET_TOKENS.sub(lambda m: self.pseudonym("SECRET", m.group(0)), text)
        out = _BEARER.sub(
            lambda m: f"{m.group(1)}{m.group(2)}{self.pseudonym('SECRET', m.group(3))}", out
        )
        out = _PASSWORD_KV.sub(
            lambda m: f"{m.group(1)}{m.group(2)}{self.pseudonym('PASSWORD', m.group(3))}", out
        )
        out = _EMAIL.sub(lambda m: self.pseudonym("EMAIL", m.group(0)), out)
        out = _CARD.sub(self._card, out)
        out = _PHONE.sub(self._phone, out)
        out = _STREET.sub(lambda m: self.pseudonym("ADDRESS", m.group(0)), out)
        return out

    def _card(self, m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        if 13 <= len(digits) <= 19 and _luhn(digits):
            return self.pseudonym("CARD", digits)
        return m.group(0)

    def _phone(self, m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        # dates (2026-10-05) and times are not phone numbers
        if len(digits) < 9 or re.fullmatch(r"\d{4}-\d{2}-\d{2}", m.group(0).strip()):
            return m.group(0)
        return self.pseudonym("PHONE", m.group(0))

    def typed(self, text: str | None, *, secret_field: bool = False) -> str | None:
        """Text an agent typed into a UI. A credential-like token typed on its own is a secret."""
        if not text:
            return text
        if secret_field or looks_like_credential(text):
            return self.pseudonym("PASSWORD", text)
        return self.redact(text)


def looks_like_credential(text: str) -> bool:
    """A single token of mixed character classes, as passwords are; not a URL, word or number."""
    t = text.strip()
    if not 6 <= len(t) <= 128 or any(c.isspace() for c in t):
        return False
    if (
        "://" in t
        or re.search(r"@[\w-]+\.[a-z]{2,}", t, re.I)  # an address, not a password with an @
        or t.startswith(("www.", "/", "@"))
        or re.fullmatch(r"[\w-]+(\.[\w-]+)+/?\S*", t)
    ):
        return False
    classes = sum(bool(re.search(p, t)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[^A-Za-z0-9]"))
    if re.fullmatch(r"[A-Za-z]+", t) or re.fullmatch(r"[\d.,]+", t):
        return False
    return classes >= 3 or (classes == 2 and re.search(r"\d", t) is not None and len(t) >= 8)


def contains_placeholder(text: str) -> bool:
    return bool(_PLACEHOLDER.search(text))


Scrubber = Callable[[str | None], str | None]
