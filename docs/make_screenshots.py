"""Screenshots of the reviewer reports for the README: rich's SVG export, turned into PNG.

Run after `make demo` (it reads demo/tracewatch.duckdb): `make screenshots`. Needs the `docs`
extra (cairosvg, which uses the system's libcairo). The PNGs are committed; nothing at run
time or in CI depends on this script.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cairosvg
import orjson

ROOT = Path(__file__).resolve().parents[1]
DB = ROOT / "demo" / "tracewatch.duckdb"
WIDTH = 100
FONT = "DejaVu Sans Mono"
SHOTS = {
    "report-overview": ["report", "overview"],
    "report-case": ["report", "case", "--top"],
}


def tw(*args: str) -> None:
    cmd = [sys.executable, "-m", "tracewatch.monitor.cli", *args]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    if not DB.exists():
        print(f"{DB} is missing; run `make demo` first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        # a copy, so that the reviewer decisions made for the picture stay out of the demo
        db = str(Path(tmp) / DB.name)
        for f in DB.parent.glob(DB.name + "*"):
            shutil.copy(f, Path(tmp) / f.name)
        cases = subprocess.run(
            [sys.executable, "-m", "tracewatch.monitor.cli", "queue", "list", "--db", db, "--json"],
            check=True,
            capture_output=True,
        ).stdout
        accounts = [c["case_id"] for c in orjson.loads(cases) if c["subject_type"] == "account"]
        for case_id, close in zip(
            accounts[:2], (("resolve", "--action", "suspend"), ("dismiss",)), strict=False
        ):
            tw("queue", "claim", case_id, "--reviewer", "dana", "--db", db)
            tw("queue", *close[:1], case_id, *close[1:], "--note", "checked the posts", "--db", db)
        for name, args in SHOTS.items():
            svg = ROOT / "docs" / f"{name}.svg"
            tw(*args, "--db", db, "--svg", str(svg), "--width", str(WIDTH))
            png = svg.with_suffix(".png")
            # rich's SVG asks for Fira Code from a CDN; offline, name an installed monospace
            # font so that columns and sparklines stay aligned
            text = svg.read_text().replace("Fira Code, monospace", f"{FONT}, monospace")
            cairosvg.svg2png(bytestring=text.encode(), write_to=str(png), output_width=1400)
            svg.unlink()
            print(f"wrote {png.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
