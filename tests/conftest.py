"""Shared fixtures. Tests that read ../shared/samples skip with a reason where it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"


@pytest.fixture
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"real trace samples not found at {SAMPLES} (shared/ is not beside this clone)")
    return SAMPLES
