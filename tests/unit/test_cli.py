from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from callqa.cli import get_app
from callqa.dataset import write_labelled_calls

runner = CliRunner()


@pytest.fixture
def labelled_file(tmp_path: Path, supplier_call) -> Path:
    other = supplier_call.model_copy(update={"call_id": "fixture-2"})
    return write_labelled_calls(tmp_path / "calls.jsonl", [supplier_call, other])


def test_evaluate_json_has_the_headline_metrics(labelled_file: Path) -> None:
    result = runner.invoke(get_app(), ["evaluate", "--data", str(labelled_file), "--model", "zero-shot", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in ("answer_f1", "answer_precision", "answer_recall", "answer_accuracy", "per_question", "n_calls"):
        assert key in data
    assert data["n_calls"] == 2
    assert set(data["per_question"]) >= {"current_supplier", "decision_maker"}
    assert data["per_question"]["last_purchase_amount"]["f1"] == 1.0


def test_evaluate_writes_markdown_report_and_chart(tmp_path: Path, labelled_file: Path) -> None:
    out = tmp_path / "report"
    result = runner.invoke(get_app(), ["evaluate", "-d", str(labelled_file), "--report-dir", str(out), "--halves"])
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| all | 2 |" in report and "last_purchase_amount" in report
    assert (out / "per_question.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_accepts_several_files(tmp_path: Path, supplier_call) -> None:
    a = write_labelled_calls(tmp_path / "a.jsonl", [supplier_call])
    b = write_labelled_calls(tmp_path / "b.jsonl", [supplier_call.model_copy(update={"call_id": "other"})])
    result = runner.invoke(get_app(), ["evaluate", "-d", str(a), "-d", str(b), "--json"])
    assert json.loads(result.stdout)["n_calls"] == 2


def test_analyze_prints_one_json_result_per_call(tmp_path: Path, supplier_call) -> None:
    path = tmp_path / "call.json"
    path.write_text(supplier_call.to_call().model_dump_json(), encoding="utf-8")
    result = runner.invoke(get_app(), ["analyze", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["call_id"] == "fixture-1"
    assert {a["question_id"] for a in data["answers"]} >= {"current_supplier", "last_purchase_amount"}
    assert data["metrics"]["agent_questions"] == 5  # "Удобно пару минут?" counts too
    assert data["turns"][0]["speaker"] == "AGENT"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ('{"call_id": "x", "turns": [', "not valid JSON"),
        ('{"call_id": "x", "turns": [{"speaker": "AGENT", "text": " "}]}', "transcript is empty"),
        (
            '{"call_id": "x", "turns": [{"speaker": "CLIENT", "text": "да"}], "answers": {"budget": null}}',
            "unknown question id",
        ),
    ],
)
def test_bad_inputs_give_a_message_and_exit_code_2(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "in.jsonl"
    if content is not None:
        path.write_text(content + "\n", encoding="utf-8")
    result = runner.invoke(get_app(), ["evaluate", "--data", str(path), "--json"])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_questionnaire_with_duplicate_ids_is_refused(tmp_path: Path, labelled_file: Path) -> None:
    q = tmp_path / "q.yaml"
    q.write_text("name: d\nquestions:\n  - id: a\n    text: Кто?\n  - id: a\n    text: Когда?\n", encoding="utf-8")
    result = runner.invoke(get_app(), ["analyze", str(labelled_file), "--questionnaire", str(q)])
    assert result.exit_code == 2
    assert "duplicate question ids: a" in result.stderr


def test_unknown_model_is_a_clear_error(labelled_file: Path) -> None:
    result = runner.invoke(get_app(), ["evaluate", "--data", str(labelled_file), "--model", "bert-large"])
    assert result.exit_code == 4
    assert "'bert-large' is neither zero-shot, champion" in result.stderr


def test_glob_matching_nothing_is_an_error(tmp_path: Path) -> None:
    result = runner.invoke(get_app(), ["evaluate", "--data", str(tmp_path / "*.jsonl")])
    assert result.exit_code == 2
    assert "no labelled-call files match" in result.stderr
