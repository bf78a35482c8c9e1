"""Secrets and personal data never survive redaction; the same value keeps the same pseudonym."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tracewatch.summarizers.redaction import Redactor, load_key, looks_like_credential

R = Redactor(b"test-key")

PLANTED = {
    "email": "dana.whitfield77@mailbox.example",
    "phone": "+1 415-555-0199",
    "card": "4111 1111 1111 1111",
    "anthropic_key": "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "github": "ghp_0123456789abcdefghijABCDEFGHIJklmnop",
    "address": "742 Evergreen Terrace",
}


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_planted_values_are_replaced(kind: str) -> None:
    value = PLANTED[kind]
    out = R.redact(f"Please use {value} for the order, thanks.")
    assert value not in out
    assert "[" in out and "]" in out


def test_password_phrases_and_bearer_tokens() -> None:
    out = R.redact("login with password: Hunter2!xyz and Authorization: Bearer abcdef1234567890")
    assert "Hunter2!xyz" not in out and "abcdef1234567890" not in out
    assert "[PASSWORD:" in out and "[SECRET:" in out


def test_pseudonyms_are_stable_keyed_and_case_insensitive_for_email() -> None:
    a = R.redact("from Dana.Whitfield77@Mailbox.example")
    b = R.redact("to dana.whitfield77@mailbox.example")
    assert a.split()[-1] == b.split()[-1]
    other = Redactor(b"another-deployment").redact("to dana.whitfield77@mailbox.example")
    assert other.split()[-1] != b.split()[-1]


def test_ordinary_text_is_left_alone() -> None:
    text = "Order 2 trail running shoes on 2026-10-05 at 14:30 for $129.99, item 12345."
    assert R.redact(text) == text


def test_not_a_card_when_luhn_fails() -> None:
    assert R.redact("tracking 4111 1111 1111 1112") == "tracking 4111 1111 1111 1112"


def test_typed_credentials() -> None:
    assert R.typed("x7#kPq29!mZr").startswith("[PASSWORD:")
    assert R.typed("hunter2pass99").startswith("[PASSWORD:")
    assert R.typed("cast iron skillet") == "cast iron skillet"
    assert R.typed("https://shop.example/cart") == "https://shop.example/cart"
    assert R.typed("anything", secret_field=True).startswith("[PASSWORD:")
    assert not looks_like_credential("Boston")
    assert not looks_like_credential("2")


def test_key_file_is_created_private_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRACEWATCH_REDACTION_KEY", raising=False)
    db = str(tmp_path / "k.duckdb")
    k1 = load_key(db)
    assert stat.S_IMODE(os.stat(f"{db}.key").st_mode) == 0o600
    assert load_key(db) == k1
    monkeypatch.setenv("TRACEWATCH_REDACTION_KEY", "from-env")
    assert load_key(db) == b"from-env"


def test_a_remembered_text_is_redacted_with_the_secrets_of_its_own_redactor() -> None:
    """Redactions are remembered per redactor: one that knows an interaction's secrets must
    not answer from what the plain redactor remembered of the same text."""
    plain = Redactor(b"k" * 32)
    text = "my note: zebra-cactus-91 and mail bo@example.com"
    first = plain.redact(text)
    assert first is not None and "bo@example.com" not in first and "zebra-cactus-91" in first
    assert plain.redact(text) == first
    knowing = plain.with_secrets(["zebra-cactus-91"])
    again = knowing.redact(text)
    assert again is not None and "zebra-cactus-91" not in again
    assert plain.redact(text) == first  # and the plain one still does not know it
