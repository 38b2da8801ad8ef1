from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pytest

from callqa.errors import BadInput
from callqa.schemas import Word
from callqa.speech.lexicon import CorrectedTranscriber, LexiconCorrector, word_counts, write_lexicon

TEXTS = [
    "меня зовут виталий компания домстройинвест",
    "хотели бы успеть до конца года",
    "окна со скидкой на монтаж",
    "до конца недели пришлю предложение",
    "все решает технический директор",
]


@pytest.fixture(scope="module")
def corrector() -> LexiconCorrector:
    return LexiconCorrector(word_counts(TEXTS))


def test_run_together_and_misspelt_words_are_respelled(corrector: LexiconCorrector) -> None:
    assert corrector.correct_text("меня зовутвиталий") == "меня зовут виталий"
    assert corrector.correct_text("хотели бы успет доконца года") == "хотели бы успеть до конца года"
    assert corrector.correct_text("") == ""


def test_three_words_run_together_are_split_when_few_letters_change(corrector: LexiconCorrector) -> None:
    # compound lookup splits a word in two at most; the whole-word segmentation takes the rest
    assert corrector.correct_text("все решаетехническийдеректор") == "все решает технический директор"
    # a split that would respell too much of the word keeps what was heard
    assert corrector.correct_text("стройгатерял") == "стройгатерял"


def test_word_times_follow_the_characters(corrector: LexiconCorrector) -> None:
    heard = [Word(text="скидкойна", start=1.0, end=2.0), Word(text="монташ", start=2.0, end=2.6)]
    fixed = corrector.correct_words(heard)
    assert [w.text for w in fixed] == ["скидкой", "на", "монтаж"]
    assert fixed[0].start == 1.0 and fixed[-1].end == pytest.approx(2.6, abs=0.05)
    assert all(a.end <= b.start + 1e-6 for a, b in itertools.pairwise(fixed))
    # words far apart are never joined into one
    apart = [Word(text="до", start=0.0, end=0.2), Word(text="конца", start=5.0, end=5.4)]
    assert [w.text for w in corrector.correct_words(apart)] == ["до", "конца"]


def test_lexicon_file_round_trip_and_errors(tmp_path: Path) -> None:
    path = write_lexicon(tmp_path / "lex.txt", Counter({"окна": 3, "монтаж": 1}))
    assert LexiconCorrector.from_file(path).correct_text("акна") == "окна"
    (tmp_path / "bad.txt").write_text("окна три\n", encoding="utf-8")
    with pytest.raises(BadInput, match=r"bad.txt:1: expected 'word count'"):
        LexiconCorrector.from_file(tmp_path / "bad.txt")
    with pytest.raises(BadInput, match="no such ASR lexicon"):
        LexiconCorrector.from_file(tmp_path / "missing.txt")
    with pytest.raises(BadInput, match="at least one word"):
        LexiconCorrector({})


def test_corrected_transcriber_wraps_any_backend(corrector: LexiconCorrector) -> None:
    class Heard:
        name = "fake"

        def transcribe(self, samples, regions):
            return [Word(text="зовутвиталий", start=0.5, end=1.5)]

    t = CorrectedTranscriber(Heard(), corrector)
    assert t.name.startswith("fake+") and [w.text for w in t.transcribe(None, [])] == ["зовут", "виталий"]


def test_letters_without_a_unicode_name_are_unknown_words_not_errors():
    from callqa.text.tokens import tokenize

    # found by the API fuzzer: pymorphy3 raised ValueError on U+17000 (a letter with no unicodedata name)
    tokens = tokenize("\U00017000 да")
    assert [t.text for t in tokens][-1] == "да"
