"""Every table a reviewer reads, as sorted rows: what engine-equivalence tests compare."""

from __future__ import annotations

from pathlib import Path

import duckdb
import orjson

TABLES = {
    "interactions": "SELECT interaction_id, account_id, source_format, started_at, content_hash,"
    " source_file, source_line FROM interactions",
    "steps": "SELECT interaction_id, step_index, kind, text, target_url FROM steps",
    "quarantine": "SELECT source_file, line, reason, error FROM quarantine",
    "summaries": "SELECT content_hash, backend, model, prompt_version, text, facets FROM summaries",
    "aggregates": "SELECT aggregate_id, kind, subject, window_size, window_start, accounts,"
    " input_hash, levels, text, facets, signals, links FROM aggregates",
    "verdicts": "SELECT verdict_id, aggregate_id, rubric_id, score, flagged, verdict FROM verdicts",
    "cases": "SELECT dedupe_key, subject_type, subject, accounts, rubric_id, status, priority"
    " FROM cases",
}


def _timeless(row: tuple) -> str:
    """A row as text, with the verdict document's own creation time left out."""
    out = []
    for value in row:
        if isinstance(value, str) and value.startswith('{"verdict_id"'):
            doc = orjson.loads(value)
            doc.pop("created_at", None)
            value = doc
        out.append(value)
    return repr(out)


def rows(db: Path) -> dict[str, list[str]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: sorted(map(_timeless, con.execute(q).fetchall())) for t, q in TABLES.items()}
    finally:
        con.close()
