"""The last guard: no value an interaction marked as secret is written anywhere, ever.

Redaction by value works inside one interaction. A secret typed into a password field in one
session can turn up unredacted in another (the same password in a task in words no pattern
knows, quoted back in a rollup text, a model's answer). So every secret value seen is kept as
a keyed fingerprint (HMAC with the deployment key, never the value) in `secret_marks`, and
before a summary, an aggregate, a verdict or a report is written, each of its tokens is
checked against them: one found is replaced by its placeholder and counted per stage in
`guard_catches` (shown by `report overview`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import duckdb
import orjson

from tracewatch.monitor.models import Interaction
from tracewatch.summarizers.redaction import Redactor
from tracewatch.summarizers.secrets import MIN_LEN, collect

# Tokens: runs without whitespace, JSON quotes, brackets or separators; and each one less its
# trailing sentence punctuation. Separators become spaces and str.split() cuts: three times
# the speed of a regex over the same text, with the same tokens.
_SEPARATORS = str.maketrans(dict.fromkeys("\"'`()[]{}<>,;|\\", " "))
_TRAIL = ".:!?"


def _tokens(text: str) -> list[str]:
    return text.translate(_SEPARATORS).split()


class Guard:
    """The deployment's secret fingerprints, loaded once per open database.

    Writes go through the caller's connection and inside the caller's transaction, so a mark
    is stored with the interaction that showed it, and a count with what it cleaned.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, key: bytes) -> None:
        self.con = con
        self._key = key
        self._keyed = hmac.new(key, b"secret\x1f", hashlib.sha256)
        self._redactor = Redactor(key)
        try:
            rows = con.execute("SELECT fingerprint FROM secret_marks").fetchall()
        except duckdb.CatalogException:  # a read-only database older than the guard
            rows = []
        self._marks: set[str] = {r[0] for r in rows}
        self._clean: set[str] = set()  # tokens known not to be secrets, while marks stay as many
        self._seen_marks = len(self._marks)
        self.caught: dict[str, int] = {}

    def on(self, con: duckdb.DuckDBPyConnection) -> Guard:
        """This guard for another connection to the same database: the marks are shared, so
        a secret one connection stored is checked in what the other writes."""
        other = Guard.__new__(Guard)
        other.con = con
        other._key = self._key
        other._keyed = self._keyed
        other._redactor = self._redactor
        other._marks = self._marks
        other._clean = set()
        other._seen_marks = len(self._marks)
        other.caught = {}
        return other

    def fingerprint(self, value: str) -> str:
        h = self._keyed.copy()  # the key schedule once, not per token
        h.update(value.encode())
        return h.hexdigest()[:32]

    def remember(
        self, interactions: Iterable[Interaction], found: Mapping[str, set[str]] | None = None
    ) -> None:
        """Keep the fingerprints (never the values) of these interactions' secrets. Call it
        inside the transaction that stores them. `found`: their secrets by content hash where
        already collected (by the worker process that built them)."""
        values: set[str] = set()
        for inter in interactions:
            got = found.get(inter.content_hash) if found else None
            values |= collect(inter) if got is None else got
        new = {self.fingerprint(v) for v in values if len(v) >= MIN_LEN} - self._marks
        if not new:
            return
        self.con.executemany(
            "INSERT OR IGNORE INTO secret_marks VALUES (?)", [[f] for f in sorted(new)]
        )
        self._marks.update(new)  # in place: other connections' guards share this set

    def _secret(self, token: str) -> bool:
        return self.fingerprint(token) in self._marks

    def _found(self, text: str) -> list[str]:
        """Every occurrence of a remembered secret among the text's tokens.

        Tokens already known to be no secret are skipped by one set difference: the writes
        repeat the same words (JSON keys, domains, kinds) millions of times, and an HMAC or
        even a Python loop per token was a fifth of a receiver's tick."""
        if self._seen_marks != len(self._marks):  # marks added (perhaps by another connection)
            self._clean = set()
            self._seen_marks = len(self._marks)
        fresh = set(_tokens(text)) - self._clean
        if not fresh:
            return []
        hits: dict[str, str] = {}
        for token in fresh:
            for cand in (token, token.rstrip(_TRAIL)):
                if len(cand) >= MIN_LEN and self._secret(cand):
                    hits[token] = cand
                    break
            else:
                self._clean.add(token)
        if not hits:
            return []
        counts = Counter(_tokens(text))  # rare: only a text that holds a secret
        return [hits[t] for t in sorted(hits) for _ in range(counts[t])]

    def clean(self, text: str, stage: str) -> str:
        """The text with every remembered secret replaced by its placeholder; counted."""
        if not self._marks or not text:
            return text
        found = self._found(text)
        if not found:
            return text
        self.caught[stage] = self.caught.get(stage, 0) + len(found)
        for value in sorted(set(found), key=len, reverse=True):
            text = text.replace(value, self._redactor.pseudonym("PASSWORD", value))
        return text

    def clean_json(self, doc: str, stage: str) -> str:
        """A JSON document with the guard applied to its string values only: keys and the
        closed vocabularies (a transaction's kind, an outcome) are structure, never text."""
        if not self._marks or not doc or not self._found(doc):
            return doc  # the common case: nothing to clean, so nothing to parse
        before = sum(self.caught.values())
        cleaned = _walk(orjson.loads(doc), lambda t: self.clean(t, stage))
        return doc if sum(self.caught.values()) == before else orjson.dumps(cleaned).decode()

    def flush(self) -> None:
        """Add the catches so far to the stored counts (inside the caller's transaction)."""
        for stage, n in sorted(self.caught.items()):
            self.con.execute(
                "INSERT INTO guard_catches VALUES (?, ?)"
                " ON CONFLICT (stage) DO UPDATE SET n = guard_catches.n + excluded.n",
                [stage, n],
            )
        self.caught = {}


_STRUCTURE = frozenset({"kind", "outcome", "aggregate_kind", "rubric_id", "judge", "backend"})


def _walk(value: Any, clean: Callable[[str], str], key: str | None = None) -> Any:
    if isinstance(value, str):
        return value if key in _STRUCTURE else clean(value)
    if isinstance(value, list):
        return [_walk(v, clean, key) for v in value]
    if isinstance(value, dict):
        return {k: _walk(v, clean, k) for k, v in value.items()}
    return value


def catches(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return dict(con.execute("SELECT stage, n FROM guard_catches ORDER BY 1").fetchall())
