"""Reading and writing labelled calls (JSONL, DESIGN.md §4) and transcripts to analyse."""

from __future__ import annotations

import glob
import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import ValidationError

from callqa.errors import BadInput
from callqa.schemas import Call, LabelledCall, Questionnaire
from callqa.yamlio import describe_validation_error


def _parse_line(path: Path, lineno: int, line: str) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}:{lineno}: not valid JSON: {exc.msg} (column {exc.colno})") from exc
    if not isinstance(record, dict):
        raise BadInput(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
    return record


def read_labelled_calls(path: str | Path, questionnaire: Questionnaire | None = None) -> list[LabelledCall]:
    """Read and validate a labelled-call JSONL file.

    Every problem is a ``BadInput`` naming the file, the line and what is wrong; nothing is
    skipped except blank lines. With ``questionnaire``, answer keys must be its question ids.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    known = set(questionnaire.ids) if questionnaire else None
    calls: list[LabelledCall] = []
    first_seen: dict[str, int] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line:
                continue
            record = _parse_line(path, lineno, line)
            try:
                call = LabelledCall.model_validate(record)
            except ValidationError as exc:
                raise BadInput(f"{path}:{lineno}: {describe_validation_error(exc)}") from exc
            if known is not None:
                unknown = sorted(set(call.answers) - known)
                if unknown:
                    raise BadInput(
                        f"{path}:{lineno}: unknown question id(s) {', '.join(unknown)} "
                        f"(questionnaire {questionnaire.name!r} has {', '.join(sorted(known))})"
                    )
            if call.call_id in first_seen:
                raise BadInput(
                    f"{path}:{lineno}: call_id {call.call_id!r} already used on line {first_seen[call.call_id]}"
                )
            first_seen[call.call_id] = lineno
            calls.append(call)
    if not calls:
        raise BadInput(f"{path}: no calls in the file")
    return calls


def expand_paths(patterns: Iterable[str | Path]) -> list[Path]:
    """Expand globs; a pattern that matches nothing is an error only if it has no wildcard."""
    paths: list[Path] = []
    for pattern in patterns:
        text = str(pattern)
        if any(ch in text for ch in "*?["):
            paths.extend(Path(p) for p in sorted(glob.glob(text)))  # noqa: PTH207 - patterns may be absolute
        else:
            paths.append(Path(text))
    return paths


def read_labelled_many(paths: Sequence[str | Path], questionnaire: Questionnaire | None = None) -> list[LabelledCall]:
    """Read several labelled files; call ids must be unique across all of them."""
    calls: list[LabelledCall] = []
    origin: dict[str, Path] = {}
    for path in expand_paths(paths):
        for call in read_labelled_calls(path, questionnaire):
            if call.call_id in origin:
                raise BadInput(f"{path}: call_id {call.call_id!r} already read from {origin[call.call_id]}")
            origin[call.call_id] = path
            calls.append(call)
    return calls


def write_labelled_calls(path: str | Path, calls: Iterable[LabelledCall]) -> Path:
    """Write labelled calls as JSONL (UTF-8, one call a line)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for call in calls:
            fh.write(call.json_line() + "\n")
    return path


def dataset_hash(calls: Iterable[LabelledCall]) -> str:
    """A content hash of labelled calls (order-independent), used as the dataset version."""
    digests = sorted(hashlib.sha256(c.json_line().encode()).hexdigest() for c in calls)
    return hashlib.sha256("".join(digests).encode()).hexdigest()[:16]


def read_calls(path: str | Path) -> list[Call]:
    """Read transcripts to analyse: a JSON call (or list of calls), or JSONL of calls or labelled calls."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    if path.suffix == ".jsonl":
        records = []
        with path.open(encoding="utf-8") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if raw.strip():
                    records.append((lineno, _parse_line(path, lineno, raw.strip())))
    else:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadInput(f"{path}: not valid JSON: {exc}") from exc
        items = data if isinstance(data, list) else [data]
        records = [(i + 1, item) for i, item in enumerate(items)]
    calls = []
    for where, record in records:
        if not isinstance(record, dict):
            raise BadInput(f"{path}:{where}: expected a JSON object")
        model = LabelledCall if "answers" in record or "errors" in record else Call
        try:
            parsed = model.model_validate(record)
        except ValidationError as exc:
            raise BadInput(f"{path}:{where}: {describe_validation_error(exc)}") from exc
        calls.append(parsed.to_call() if isinstance(parsed, LabelledCall) else parsed)
    if not calls:
        raise BadInput(f"{path}: no calls in the file")
    return calls
