"""Reading rubric files, with errors a policy author can act on (file, line, field).

Rubrics are YAML. The file is composed into a node tree first so that a pydantic error at
`signals.2.full` can be reported at the line where that field (or, if it is missing, the
mapping that should hold it) is written. Calibrations live beside the built-in rubrics in
`calibration.json`, keyed by rubric id, version and judge: a rubric edited to a new version
falls back to its own default threshold until it is calibrated again.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from tracewatch.rubrics.models import Calibration, Rubric

BUILTIN_DIR = Path(__file__).parent / "builtin"
CALIBRATION_FILE = BUILTIN_DIR / "calibration.json"


class RubricError(ValueError):
    """A rubric file that cannot be used; the message names the file, line and field."""


def _node_at(node: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """The deepest node along a pydantic error location that exists in the file."""
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            nxt = node.value[part] if part < len(node.value) else None
        else:
            nxt = None
        if nxt is None:
            return node
        node = nxt
    return node


# libyaml's parser where PyYAML has it: every run loads the rubrics, and the pure-Python
# parser was a third of a rerun with nothing new.
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_rubric(text: str, source: str) -> Rubric:
    try:
        data = yaml.load(text, Loader=_FAST_LOADER)
    except yaml.YAMLError:
        try:  # the pure parser again, for its wording of the error (and its own verdict)
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{source}:{mark.line + 1}" if mark else source
            raise RubricError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise RubricError(f"{source}:1: a rubric is a mapping of fields, got {type(data).__name__}")
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        root = yaml.compose(text, Loader=yaml.SafeLoader)  # the node tree, for line numbers
        lines = []
        for err in exc.errors(include_input=False, include_url=False):
            loc = err["loc"]
            node = _node_at(root, loc)
            line = node.start_mark.line + 1 if node is not None else 1
            field = ".".join(str(p) for p in loc) or "(root)"
            lines.append(f"{source}:{line}: field {field}: {err['msg']}")
        raise RubricError("\n".join(lines)) from None


def load_file(path: Path) -> Rubric:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RubricError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_rubric(text, str(path))


def load_rubrics(extra_dirs: Iterable[Path] = (), builtin: bool = True) -> list[Rubric]:
    """The built-in rubrics plus every `*.yaml`/`*.yml` in the given folders.

    A user file with the id of a built-in rubric replaces it (that is how a deployment
    tightens one); two user files with one id is an error, since which one wins would be luck.
    """
    found: dict[str, tuple[Rubric, Path]] = {}
    dirs = ([BUILTIN_DIR] if builtin else []) + list(extra_dirs)
    for d in dirs:
        if not d.is_dir():
            raise RubricError(f"{d}: not a folder of rubric files")
        seen_here: dict[str, Path] = {}
        for path in sorted([*d.glob("*.yaml"), *d.glob("*.yml")]):
            rubric = load_file(path)
            if rubric.id in seen_here:
                raise RubricError(
                    f"{path}: field id: {rubric.id!r} is also the id of {seen_here[rubric.id]}"
                )
            seen_here[rubric.id] = path
            found[rubric.id] = (rubric, path)
    return [r for r, _ in sorted(found.values(), key=lambda rp: rp[0].id)]


def load_calibrations(path: Path = CALIBRATION_FILE) -> list[Calibration]:
    if not path.exists():
        return []
    try:
        data = orjson.loads(path.read_bytes())
        return [Calibration.model_validate(c) for c in data]
    except (orjson.JSONDecodeError, ValidationError, TypeError) as exc:
        raise RubricError(f"{path}: not a list of calibrations ({exc})") from None


def save_calibrations(cals: list[Calibration], path: Path = CALIBRATION_FILE) -> None:
    cals = sorted(cals, key=lambda c: (c.rubric_id, c.judge))
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(
        orjson.dumps([c.model_dump(mode="json") for c in cals], option=orjson.OPT_INDENT_2) + b"\n"
    )
    tmp.replace(path)


def threshold_for(rubric: Rubric, judge: str, calibrations: list[Calibration]) -> tuple[float, str]:
    """The calibrated threshold for this rubric version and judge, else the rubric's default.
    The cascade screens with the signals judge, so it takes the signals calibration unless it
    has its own."""
    for name in (judge, "signals") if judge == "cascade" else (judge,):
        for c in calibrations:
            if c.rubric_id == rubric.id and c.rubric_version == rubric.version and c.judge == name:
                return c.threshold, "calibrated"
    return rubric.threshold, "rubric default"
