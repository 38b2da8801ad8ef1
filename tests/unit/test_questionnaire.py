from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from callqa.errors import BadInput
from callqa.questionnaire import load_questionnaire
from callqa.schemas import QuestionKind
from tests.builders import SHARED_DATA


def test_default_questionnaire_has_the_ten_key_questions(questionnaire) -> None:
    assert questionnaire.name == "b2b_equipment_v1"
    assert len(questionnaire.questions) == 10
    assert questionnaire.get("last_purchase_amount").kind == QuestionKind.MONEY_RUB
    assert not questionnaire.get("competitor_offers").required


@pytest.mark.skipif(not (SHARED_DATA / "questionnaire.yaml").exists(), reason="shared questionnaire not present")
def test_packaged_default_is_the_shared_questionnaire(questionnaire) -> None:
    shared = yaml.safe_load((SHARED_DATA / "questionnaire.yaml").read_text(encoding="utf-8"))
    assert shared["name"] == questionnaire.name
    for theirs, ours in zip(shared["questions"], questionnaire.questions, strict=True):
        assert theirs == ours.model_dump(mode="json", exclude={"paraphrases", "cues"})


def test_duplicate_ids_in_yaml_give_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "q.yaml"
    path.write_text(
        "name: dup\nquestions:\n  - id: budget\n    text: Какой бюджет?\n  - id: budget\n    text: Сколько денег?\n",
        encoding="utf-8",
    )
    with pytest.raises(BadInput, match=r"q\.yaml: questions: duplicate question ids: budget"):
        load_questionnaire(path)


def test_missing_and_unparsable_questionnaire(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such file"):
        load_questionnaire(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed", encoding="utf-8")
    with pytest.raises(BadInput, match="not valid YAML"):
        load_questionnaire(bad)


def test_unknown_kind_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "q.yaml"
    path.write_text("name: k\nquestions:\n  - id: a\n    text: Какой цвет?\n    kind: colour\n", encoding="utf-8")
    with pytest.raises(BadInput, match="kind"):
        load_questionnaire(path)
