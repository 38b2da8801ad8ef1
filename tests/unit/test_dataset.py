from __future__ import annotations

import json
from pathlib import Path

import pytest

from callqa.dataset import dataset_hash, read_calls, read_labelled_calls, read_labelled_many, write_labelled_calls
from callqa.errors import BadInput
from tests.builders import SHARED_DATA


def test_round_trip_keeps_every_field(tmp_path: Path, supplier_call, questionnaire) -> None:
    path = write_labelled_calls(tmp_path / "calls.jsonl", [supplier_call])
    (back,) = read_labelled_calls(path, questionnaire)
    assert back == supplier_call
    assert json.loads(path.read_text(encoding="utf-8"))["answers"]["current_supplier"]["value"] == "Подшипник-Центр"


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="shared dev data not present")
def test_shared_dev_files_round_trip_byte_for_byte_in_content(tmp_path: Path, questionnaire) -> None:
    src = SHARED_DATA / "dev_calls.jsonl"
    calls = read_labelled_calls(src, questionnaire)
    out = write_labelled_calls(tmp_path / "out.jsonl", calls)
    original = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines() if line.strip()]
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert written == original


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_broken_json_names_file_and_line(tmp_path: Path, supplier_call) -> None:
    path = _write(tmp_path, [supplier_call.json_line(), '{"call_id": "x", "turns": ['])
    with pytest.raises(BadInput, match=r"bad\.jsonl:2: not valid JSON"):
        read_labelled_calls(path)


def test_invalid_record_names_line_and_field(tmp_path: Path, supplier_call) -> None:
    record = json.loads(supplier_call.json_line())
    record["turns"][1]["speaker"] = "ROBOT"
    path = _write(tmp_path, ["", json.dumps(record, ensure_ascii=False)])
    with pytest.raises(BadInput, match=r"bad\.jsonl:2: turns\.1\.speaker"):
        read_labelled_calls(path)


def test_unknown_question_id_is_an_error(tmp_path: Path, supplier_call, questionnaire) -> None:
    record = json.loads(supplier_call.json_line())
    record["answers"]["budget_owner"] = None
    path = _write(tmp_path, [json.dumps(record, ensure_ascii=False)])
    with pytest.raises(BadInput, match=r"unknown question id.*budget_owner"):
        read_labelled_calls(path, questionnaire)


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such file"):
        read_labelled_calls(tmp_path / "nope.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(BadInput, match="no calls"):
        read_labelled_calls(empty)


def test_duplicate_call_ids_are_refused_within_and_across_files(tmp_path: Path, supplier_call) -> None:
    path = _write(tmp_path, [supplier_call.json_line(), supplier_call.json_line()])
    with pytest.raises(BadInput, match="already used on line 1"):
        read_labelled_calls(path)
    one = write_labelled_calls(tmp_path / "one.jsonl", [supplier_call])
    two = write_labelled_calls(tmp_path / "two.jsonl", [supplier_call])
    with pytest.raises(BadInput, match="already read from"):
        read_labelled_many([one, two])


def test_empty_transcript_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, ['{"call_id": "e", "turns": [{"speaker": "AGENT", "text": ""}], "answers": {}}'])
    with pytest.raises(BadInput, match="transcript is empty"):
        read_labelled_calls(path)


def test_read_calls_accepts_json_list_and_jsonl(tmp_path: Path, supplier_call) -> None:
    call = supplier_call.to_call()
    (tmp_path / "one.json").write_text(call.model_dump_json(), encoding="utf-8")
    (tmp_path / "many.json").write_text(f"[{call.model_dump_json()}, {call.model_dump_json()}]", encoding="utf-8")
    labelled = write_labelled_calls(tmp_path / "l.jsonl", [supplier_call])
    assert [c.call_id for c in read_calls(tmp_path / "one.json")] == ["fixture-1"]
    assert len(read_calls(tmp_path / "many.json")) == 2
    assert read_calls(labelled)[0].turns == supplier_call.turns


def test_dataset_hash_ignores_order_but_not_content(supplier_call) -> None:
    other = supplier_call.model_copy(update={"call_id": "fixture-2"})
    assert dataset_hash([supplier_call, other]) == dataset_hash([other, supplier_call])
    changed = other.model_copy(update={"notes": "edited"})
    assert dataset_hash([supplier_call, other]) != dataset_hash([supplier_call, changed])
