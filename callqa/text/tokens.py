"""Tokens with character offsets, lemmas and morphology (razdel + pymorphy3)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import pymorphy3
import razdel

_WORD = re.compile(r"\w", re.UNICODE)


def normalize(text: str) -> str:
    """Lowercase and fold ё to е: the form every comparison uses."""
    return text.lower().replace("ё", "е")


@dataclass(frozen=True, slots=True)
class Morph:
    lemma: str
    pos: str | None
    known: bool
    grammemes: frozenset[str]


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    start: int
    end: int
    norm: str
    lemma: str
    pos: str | None
    known: bool
    grammemes: frozenset[str]

    @property
    def is_word(self) -> bool:
        return bool(_WORD.search(self.text))

    @property
    def is_capitalized(self) -> bool:
        return self.text[:1].isupper()


@lru_cache(maxsize=1)
def morph_analyzer() -> pymorphy3.MorphAnalyzer:
    """The shared pymorphy3 analyzer (loads its dictionaries once, ~0.3 s)."""
    return pymorphy3.MorphAnalyzer()


@lru_cache(maxsize=200_000)
def analyze(word: str) -> Morph:
    """Lemma (ё folded), part of speech and grammemes of a lowercase word (cached).

    Pass the word with its ё: "берёте" is a verb, "берете" could be a beret.
    """
    norm = word.replace("ё", "е")
    if not _WORD.search(word):
        return Morph(norm, None, True, frozenset())
    analyzer = morph_analyzer()
    try:
        parses = analyzer.parse(word)
    except ValueError:  # pymorphy3 asks unicodedata for each letter's name; unnamed code points have none
        return Morph(norm, None, False, frozenset())
    best = parses[0]
    grammemes: set[str] = set()
    for p in parses[:3]:
        if p.score >= best.score * 0.5:
            grammemes |= set(p.tag.grammemes)
    known = analyzer.word_is_known(word) or word.isdigit()
    return Morph(best.normal_form.replace("ё", "е"), best.tag.POS, known, frozenset(grammemes))


def lemma(word: str) -> str:
    """The dictionary form of one word."""
    return analyze(word.lower()).lemma


def tokenize(text: str, offset: int = 0) -> list[Token]:
    """Split text into tokens (words, numbers, punctuation) with offsets into ``text``."""
    tokens = []
    for piece in razdel.tokenize(text):
        norm = normalize(piece.text)
        m = analyze(piece.text.lower())
        tokens.append(
            Token(
                text=piece.text,
                start=piece.start + offset,
                end=piece.stop + offset,
                norm=norm,
                lemma=m.lemma,
                pos=m.pos,
                known=m.known,
                grammemes=m.grammemes,
            )
        )
    return tokens


def words(text: str) -> list[str]:
    """Normalised word tokens of a text, punctuation dropped."""
    return [normalize(t.text) for t in razdel.tokenize(text) if _WORD.search(t.text)]


def metric_tokens(text: str) -> list[str]:
    """Lowercase, fold ё, replace punctuation with spaces, split (the answer-metric tokens)."""
    return re.sub(r"[\W_]+", " ", normalize(text)).split()


def token_f1(pred: str, gold: str) -> float:
    """SQuAD-style token overlap F1 of two texts."""
    p, g = metric_tokens(pred), metric_tokens(gold)
    if not p or not g:
        return float(p == g)
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)
