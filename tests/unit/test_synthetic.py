"""The synthetic call generator: valid, deterministic, varied, honestly labelled data."""

from __future__ import annotations

import json
import random
import re
import statistics
import time
from collections import Counter
from pathlib import Path

import pytest

from callqa.dataset import read_labelled_calls, write_labelled_calls
from callqa.questionnaire import load_questionnaire
from callqa.schemas import CallType, ErrorId, GoldAnswer, LabelledCall, Speaker, Turn
from callqa.synthetic import asr_text, generate_calls, render_asr, volunteered_questions
from callqa.synthetic.bank import load_bank
from callqa.synthetic.generator import FILLER_RE, SALES, VALUE_REDUCING_RE, CallWriter
from callqa.synthetic.markup import fill, parse
from callqa.synthetic.russian import inflect_company

ASR_CHARS = re.compile(r"^[a-zа-я ]+( —)?$")  # words; a turn cut off keeps its dash
DEV_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="module")
def calls() -> list[LabelledCall]:
    return generate_calls(300, seed=42)


@pytest.fixture(scope="module")
def questionnaire():
    return load_questionnaire()


def _asr(calls: list[LabelledCall]) -> list[LabelledCall]:
    return [c for c in calls if "raw ASR" in c.notes]


def test_same_seed_gives_identical_lines_and_other_seeds_differ() -> None:
    first = [c.json_line() for c in generate_calls(30, seed=7)]
    again = [c.json_line() for c in generate_calls(30, seed=7)]
    other = [c.json_line() for c in generate_calls(30, seed=8)]
    assert first == again
    assert sum(a != b for a, b in zip(first, other, strict=True)) > 25


def test_start_id_continues_the_same_stream() -> None:
    whole = generate_calls(12, seed=3)
    tail = generate_calls(4, seed=3, start_id=8)
    assert [c.json_line() for c in tail] == [c.json_line() for c in whole[8:]]
    assert [c.call_id for c in tail] == ["syn-000008", "syn-000009", "syn-000010", "syn-000011"]


def test_calls_round_trip_through_the_dataset_format(calls, questionnaire, tmp_path) -> None:
    path = write_labelled_calls(tmp_path / "syn.jsonl", calls)
    back = read_labelled_calls(path, questionnaire)
    assert [c.json_line() for c in back] == [c.json_line() for c in calls]
    for call in back:
        assert set(call.answers) == set(questionnaire.ids)
        for gold in call.answers.values():
            if gold is not None:
                turn = call.turns[gold.turn]
                assert turn.speaker == Speaker.CLIENT
                assert gold.text in turn.text
                assert gold.text == gold.text.strip(" ,.;:!?")


def test_every_call_type_and_error_appears(calls) -> None:
    assert {c.call_type for c in generate_calls(200, seed=1)} == set(CallType)
    assert {c.call_type for c in calls} == set(CallType)
    assert {e for c in calls for e in c.errors} == set(ErrorId)
    assert sum(not c.errors for c in calls) > 60, "plenty of clean calls too"


def test_spam_calls_have_no_answers_and_no_callback(calls) -> None:
    spam = [c for c in calls if c.call_type == CallType.SPAM]
    assert spam
    for call in spam:
        assert all(a is None for a in call.answers.values())
        assert call.callback is None and call.nps is None


def test_asr_rendered_calls_look_like_raw_asr(calls) -> None:
    asr = _asr(calls)
    assert 0.2 < len(asr) / len(calls) < 0.45
    for call in asr:
        for turn in call.turns:
            assert ASR_CHARS.match(turn.text), turn.text
        if call.callback:
            assert ASR_CHARS.match(call.callback)
        purchase = call.answers["next_purchase"]
        if purchase is not None:
            assert purchase.value == asr_text(str(purchase.value))


def test_asr_share_is_honoured() -> None:
    assert not _asr(generate_calls(20, seed=5, asr_share=0.0))
    assert len(_asr(generate_calls(20, seed=5, asr_share=1.0))) == 20


def test_values_are_normalised_by_kind(calls) -> None:
    kinds = Counter()
    for call in calls:
        for qid, gold in call.answers.items():
            if gold is None:
                continue
            kinds[qid] += 1
            if qid == "last_purchase_amount":
                assert type(gold.value) is int and gold.value >= 1000
            elif qid == "competitor_offers":
                assert type(gold.value) is bool
            elif qid == "current_supplier":
                assert isinstance(gold.value, str) and all(name[0].isupper() for name in gold.value.split(", "))
            elif qid == "next_purchase":
                assert gold.value == str(gold.value).lower()
            elif qid == "decision_maker":
                assert isinstance(gold.value, str) and gold.value
            else:
                assert gold.value is None
    assert all(kinds[q] > 5 for q in kinds)
    offers = [c.answers["competitor_offers"] for c in calls if c.answers["competitor_offers"]]
    assert {g.value for g in offers} == {True, False}


def test_sales_calls_mix_given_and_missing_answers(calls) -> None:
    sales = [c for c in calls if c.call_type in SALES]
    golds = [g for c in sales for g in c.answers.values()]
    given = sum(g is not None for g in golds) / len(golds)
    assert given > 0.25
    assert 1 - given > 0.10


def test_every_question_is_sometimes_volunteered(calls, questionnaire) -> None:
    volunteered = Counter(q for c in calls for q in volunteered_questions(c))
    assert set(volunteered) == set(questionnaire.ids)
    for call in calls:
        for qid in volunteered_questions(call):
            assert call.answers[qid] is not None


def test_error_labels_match_what_the_agent_says(calls) -> None:
    for call in calls:
        agent = " ".join(t.text for t in call.turns if t.speaker == Speaker.AGENT)
        errors = set(call.errors)
        assert (ErrorId.FILLER_WORDS in errors) == (len(FILLER_RE.findall(agent)) >= 2), call.call_id
        assert (ErrorId.VALUE_REDUCING_WORDS in errors) == bool(VALUE_REDUCING_RE.search(agent)), call.call_id
        cut_off = any(
            a.speaker == Speaker.CLIENT and a.text.endswith(" —") and b.speaker == Speaker.AGENT
            for a, b in zip(call.turns, call.turns[1:], strict=False)
        )
        assert (ErrorId.INTERRUPTION in errors) == cut_off, call.call_id  # raw ASR keeps the cut-off dash
        if call.call_type not in SALES:
            assert not errors & {ErrorId.INCOMPLETE_QUALIFICATION, ErrorId.NO_NEEDS_DISCOVERY}


def test_nps_only_in_surveys_and_mostly_given(calls) -> None:
    surveys = [c for c in calls if c.call_type == CallType.NPS_SURVEY]
    assert all(c.nps is None for c in calls if c.call_type != CallType.NPS_SURVEY)
    scored = [c.nps for c in surveys if c.nps is not None]
    assert len(scored) > len(surveys) / 2
    assert len(set(scored)) > 3


def test_calls_have_realistic_lengths(calls) -> None:
    lengths = [len(c.turns) for c in calls]
    assert min(lengths) >= 3 and max(lengths) <= 34
    assert 8 <= statistics.median(lengths) <= 30
    assert len({c.industry for c in calls}) >= 10


def test_render_asr_keeps_nested_spans_exact() -> None:
    text = "Ну, «Пластик-Юг» возит. В прошлый раз на 2,5 млн брали. Я собираю КП, а утверждает финдиректор."
    call = LabelledCall(
        call_id="t-1",
        turns=[Turn(speaker=Speaker.AGENT, text="Кто поставляет?"), Turn(speaker=Speaker.CLIENT, text=text)],
        answers={
            "current_supplier": GoldAnswer(turn=1, text="«Пластик-Юг» возит", value="Пластик-Юг"),
            "last_purchase_amount": GoldAnswer(turn=1, text="на 2,5 млн", value=2_500_000),
            "decision_process": GoldAnswer(turn=1, text="Я собираю КП, а утверждает финдиректор"),
            "decision_maker": GoldAnswer(turn=1, text="финдиректор", value="финдиректор"),
            "next_purchase": None,
        },
        callback="во вторник, после обеда",
    )
    rendered = render_asr(call)
    client = rendered.turns[1].text
    assert client == (
        "ну пластик юг возит в прошлый раз на два с половиной миллиона брали я собираю кп а утверждает финдиректор"
    )
    answers = rendered.answers
    assert answers["current_supplier"].text == "пластик юг возит"
    assert answers["current_supplier"].value == "Пластик-Юг"
    assert answers["last_purchase_amount"].text == "на два с половиной миллиона"
    assert answers["last_purchase_amount"].value == 2_500_000
    assert answers["decision_process"].text == "я собираю кп а утверждает финдиректор"
    assert answers["decision_maker"].text == "финдиректор"
    assert rendered.callback == "во вторник после обеда"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("На 2,5 млн брали.", "на два с половиной миллиона брали"),
        ("1,5 млн", "полтора миллиона"),
        ("Где-то 1 700 000 рублей — с НДС!", "где то миллион семьсот тысяч рублей с ндс"),
        ("380 тыс. рублей", "триста восемьдесят тысяч рублей"),
        ("2 тысячи", "две тысячи"),
        ("скидка 7%", "скидка семь процентов"),
        ("Ставлю 8. Ёлки!", "ставлю восемь елки"),
    ],
)
def test_asr_text_says_numbers_in_words(text: str, said: str) -> None:
    assert asr_text(text) == said


def test_company_names_are_inflected() -> None:
    assert inflect_company("Волганасос")["gen"] == "Волганасоса"
    assert inflect_company("Полимертара")["ins"] == "Полимертарой"
    assert inflect_company("Севкабель")["ins"] == "Севкабелем"
    assert inflect_company("Энергия")["pre"] == "Энергии"


def test_phrase_banks_are_rich_and_every_template_fills() -> None:
    bank = load_bank()
    assert len(bank.industries) >= 10
    for qid, question in bank.questions.items():
        assert len(question.paraphrases()) >= 6, qid
        assert sum(len(t) for t in question.answers.values()) >= 10, qid
    writer = CallWriter(bank, random.Random(0), "probe")
    writer.plan = writer.choose_plan()
    writer.cast(writer.plan)
    extra = dict.fromkeys(("score", "wrong", "hypo", "spam_co", "spam_offer", "spam_price", "spammer"), "x")
    slots = {**writer.slots, **extra, "callback": "завтра с утра"}
    templates = [t for lines in bank.lines.values() for t in lines]
    templates += [t.text for q in bank.questions.values() for group in q.answers.values() for t in group]
    templates += [t for q in bank.questions.values() for t in q.paraphrases() + q.state + q.dodge + q.refuse]
    for template in templates:
        plain, _ = parse(fill(template, slots, random.Random(0), writer.genders))
        assert "{" not in plain and "[" not in plain, template


def test_generated_calls_do_not_copy_dev_calls(calls) -> None:
    """No client turn of a generated call shares eight words in a row with a dev call's client turn: the
    answers (where the labels live) are never copied. Agents' stock questions ("а кто у вас решает по
    закупке") may coincide with calls written later by other people."""
    paths = sorted(DEV_DATA.glob("dev_calls*.jsonl"))
    if not paths:
        pytest.skip("no hand-written dev calls next to the repository")

    def shingles(text: str, k: int = 8) -> set[str]:
        words = asr_text(text).split()
        return {" ".join(words[i : i + k]) for i in range(len(words) - k + 1)}

    dev = set()
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                for turn in json.loads(line)["turns"]:
                    if turn["speaker"] == "CLIENT":
                        dev |= shingles(turn["text"])
    copied = {s for c in calls for t in c.turns if t.speaker == "CLIENT" for s in shingles(t.text) & dev}
    assert not copied


def test_generation_is_fast() -> None:
    began = time.perf_counter()
    generate_calls(500, seed=11)
    assert time.perf_counter() - began < 5.0


def test_answer_spans_follow_the_annotators_statement_convention(calls) -> None:
    widened = 0
    for call in calls:
        by_turn: dict[int, list[tuple[int, int]]] = {}
        for gold in call.answers.values():
            if gold is None:
                continue
            text = call.turns[gold.turn].text
            start = text.find(gold.text)
            assert start >= 0
            by_turn.setdefault(gold.turn, []).append((start, start + len(gold.text)))
            widened += text[start + len(gold.text) :][:1] in (".", "!", "?", "…", "")
        for spans in by_turn.values():  # two answers in one turn never become one span
            assert len(set(spans)) == len(spans), call.call_id
    assert widened > 0.3 * sum(1 for c in calls for g in c.answers.values() if g is not None)
