"""Normalised answer values by question kind: roubles, dates, organisation names, roles, yes/no."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from callqa.schemas import AnswerValue, QuestionKind
from callqa.text.dates import resolve_time_expression
from callqa.text.lexicon import Lexicon
from callqa.text.numbers import find_numbers
from callqa.text.tokens import Token, analyze, morph_analyzer

_PERSON = frozenset({"Name", "Patr", "Surn"})
_SENTENCE_END = frozenset({".", "!", "?", "…"})
_QUOTES_OPEN = frozenset({"«", '"', "“", "„"})
_QUOTES_CLOSE = frozenset({"»", '"', "”", "“"})
_TIME_WORD = re.compile(
    r"^(?:январ|феврал|март|апрел|ма[йяюе]$|июн|июл|август|сентябр|октябр|ноябр|декабр|"
    r"понедельник|вторник|сред[ауы]$|четверг|пятниц|суббот|воскресен|новы|нов[оу])"
)


# a drawn-out sound, not a name: "А-а", "М-м-м", "Ээ"
_DRAWL = re.compile(r"(\w)(?:-?\1)+")


def _title(word: str) -> str:
    return "-".join(part[:1].upper() + part[1:] for part in word.split("-"))


# The cases a preposition governs, likeliest first: an unknown name after it is read in one
# ("с Акросом" is Акрос, not a nominative "Акросом").
_PREPOSITION_CASES: dict[str, tuple[str, ...]] = {
    "с": ("ablt", "gent"),
    "со": ("ablt", "gent"),
    "у": ("gent",),
    "от": ("gent",),
    "из": ("gent",),
    "до": ("gent",),
    "для": ("gent",),
    "кроме": ("gent",),
    "через": ("accs",),
    "про": ("accs",),
    "к": ("datv",),
    "ко": ("datv",),
    "по": ("datv",),
    "в": ("loct", "accs"),
    "во": ("loct", "accs"),
    "на": ("loct", "accs"),
    "о": ("loct",),
    "об": ("loct",),
    "при": ("loct",),
}


def _nominative(token: Token, before: Token | None = None) -> str:
    """The nominative form of a name as written ("Севзапкабеля" → "Севзапкабель"); ``before``
    is the word in front of it: after a preposition the name is read in a case it governs."""
    if "-" in token.norm:  # "Пластик-Юга": only the last part declines
        *head, last = token.text.lower().split("-")
        return _title("-".join([*head, analyze(last).lemma]))
    nouns = [p for p in morph_analyzer().parse(token.text.lower()) if p.tag.POS == "NOUN"]
    governed = _PREPOSITION_CASES.get(before.norm, ()) if before is not None else ()
    chosen = next((p for case in governed for p in nouns if p.tag.case == case), nouns[0] if nouns else None)
    if chosen is not None:
        return _title(chosen.normal_form.replace("ё", "е"))
    return _title(token.lemma)


def _is_sentence_start(tokens: list[Token], i: int) -> bool:
    j = i - 1
    while j >= 0 and tokens[j].text in _QUOTES_OPEN:
        j -= 1
    return j < 0 or tokens[j].text in _SENTENCE_END


def _org_strength(tokens: list[Token], i: int, lexicon: Lexicon) -> float:
    """How much token ``i`` looks like part of a company name: 1 sure, 0.5 weak, 0 no."""
    t = tokens[i]
    if not t.is_word or t.norm.isdigit() or len(t.norm) < 2:
        return 0.0
    if t.lemma in lexicon.roles or t.lemma in lexicon.stopwords or t.norm in lexicon.not_names:
        return 0.0
    if _TIME_WORD.match(t.norm) or _DRAWL.fullmatch(t.norm):
        return 0.0
    if t.known and t.grammemes & _PERSON:
        return 0.0
    if t.known and "Geox" in t.grammemes:
        return 0.0
    if t.is_capitalized and not _is_sentence_start(tokens, i):
        return 1.0
    if t.is_capitalized and not t.known:
        return 1.0
    if not t.known and t.pos in (None, "NOUN") and not t.text.isupper():
        return 0.5
    return 0.0


@dataclass(frozen=True, slots=True)
class NameSpan:
    start: int  # token indices [start, end)
    end: int
    strength: float


def organization_spans(tokens: list[Token], lexicon: Lexicon) -> list[NameSpan]:
    """Company names: quoted names, capitalised words mid-sentence, unknown nouns (weakly)."""
    spans: list[NameSpan] = []
    i = 0
    while i < len(tokens):
        if tokens[i].text in _QUOTES_OPEN:
            j = i + 1
            while j < len(tokens) and tokens[j].text not in _QUOTES_CLOSE and j - i < 6:
                j += 1
            if j < len(tokens) and j > i + 1 and tokens[j].text in _QUOTES_CLOSE:
                spans.append(NameSpan(i + 1, j, 1.0))
                i = j + 1
                continue
        strength = _org_strength(tokens, i, lexicon)
        if strength:
            j = i + 1
            while j < len(tokens) and _org_strength(tokens, j, lexicon) >= strength and tokens[j].is_capitalized:
                j += 1
            spans.append(NameSpan(i, j, strength))
            i = j
            continue
        i += 1
    return spans


_CASES = frozenset({"nomn", "gent", "datv", "accs", "ablt", "loct"})


def _agreeing_noun(tokens: list[Token], span: NameSpan) -> Token | None:
    """The lowercase noun after a one-word capitalised adjective name that agrees with it in case.

    Two-word names of the kind "Мебельный стиль", "Русский свет" are said with the noun in lower
    case; only the adjective starts the name."""
    if span.end - span.start != 1 or span.end >= len(tokens):
        return None
    adj, noun = tokens[span.start], tokens[span.end]
    if adj.pos != "ADJF" or noun.pos != "NOUN" or noun.is_capitalized or not noun.known:
        return None
    if not (adj.grammemes & noun.grammemes & _CASES):
        return None
    return noun


def _adjective_noun_name(adj: Token, noun: Token) -> str:
    """ "Мебельного" + "стиля" -> "Мебельный стиль": both words in the nominative, agreeing in gender."""
    analyzer = morph_analyzer()
    cases = adj.grammemes & noun.grammemes & _CASES
    noun_parse = next(
        (p for p in analyzer.parse(noun.text.lower()) if p.tag.POS == "NOUN" and p.tag.case in cases), None
    )
    if noun_parse is None:
        return _nominative(adj)
    head = noun_parse.inflect({"nomn", noun_parse.tag.number or "sing"})
    agree = {"nomn", "plur"} if noun_parse.tag.number == "plur" else {"nomn", "sing", noun_parse.tag.gender or "masc"}
    for p in analyzer.parse(adj.text.lower()):
        if p.tag.POS == "ADJF" and (inflected := p.inflect(agree)) is not None:
            word = inflected.word
            break
    else:
        word = adj.lemma
    return f"{_title(word)} {(head.word if head else noun_parse.normal_form)}".replace("ё", "е")


def organization_value(tokens: list[Token], lexicon: Lexicon, spans: list[NameSpan] | None = None) -> str | None:
    """Company names said in ``tokens``, nominative, joined with ", " ("Ситилинк, Регард").

    ``spans``: the names to keep, from ``organization_spans`` of the same tokens (default: all)."""
    names: list[str] = []
    spans = organization_spans(tokens, lexicon) if spans is None else spans
    best = max((s.strength for s in spans), default=0)
    for span in spans:
        if span.strength < best:
            continue
        words = tokens[span.start : span.end]
        noun = _agreeing_noun(tokens, span)
        if noun is not None:  # "у Мебельного стиля" -> "Мебельный стиль"
            name = _adjective_noun_name(words[0], noun)
        else:
            before = tokens[span.start - 1] if span.start > 0 else None
            name = " ".join(_nominative(w, before) if k == 0 else w.text for k, w in enumerate(words))
        if name.lower() not in (n.lower() for n in names):
            names.append(name)
    return ", ".join(names) or None


def role_spans(tokens: list[Token], lexicon: Lexicon) -> list[tuple[int, int]]:
    """Role phrases ("финансовый директор", "директор по производству") as token ranges."""
    spans = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.is_word and (t.lemma in lexicon.roles or t.norm in lexicon.roles):
            start = i
            while (
                start > 0
                and tokens[start - 1].pos in ("ADJF",)
                and tokens[start - 1].lemma
                not in (
                    "наш",
                    "ваш",
                    "их",
                )
            ):
                start -= 1
            end = i + 1
            # adjectives used as nouns: "генеральный", "главный инженер", "коммерческий директор"
            while (
                end < len(tokens)
                and tokens[end].is_word
                and (tokens[end].lemma in lexicon.roles or tokens[end].norm in lexicon.roles)
            ):
                end += 1
            if end + 1 < len(tokens) and tokens[end].norm == "по" and tokens[end + 1].is_word:
                end += 2
            elif end < len(tokens) and tokens[end].pos == "NOUN" and "ablt" in tokens[end].grammemes:
                end += 1  # "управляющий филиалом"
            spans.append((start, end))
            i = end
            continue
        i += 1
    return spans


def person_name_after(tokens: list[Token], pos: int) -> tuple[int, int] | None:
    """A person's name (first name + patronymic, or a surname) at or just after ``pos``, same sentence."""
    j = pos
    while j < len(tokens) and (not tokens[j].is_word or tokens[j].norm in ("конечно",)):
        if tokens[j].text in _SENTENCE_END:
            return None
        j += 1
    end = j
    while end < len(tokens) and tokens[end].is_word and tokens[end].known and tokens[end].grammemes & _PERSON:
        end += 1
    return (j, end) if end > j else None


def _decision_strength(tokens: list[Token], start: int, end: int, lexicon: Lexicon) -> int:
    """2 when a final-say verb (решает, утверждает) stands next to the role, 1 for taking part."""
    near = [t for t in tokens[max(0, start - 3) : end + 3] if t.pos == "VERB"]
    if any(t.lemma in lexicon.decision_verbs_final for t in near):
        return 2
    return int(any(t.lemma in lexicon.decision_verbs for t in near))


def role_value(tokens: list[Token], lexicon: Lexicon) -> str | None:
    """The decision maker: role phrase in nominative, then the person's name when said."""
    spans = role_spans(tokens, lexicon)
    if spans:
        start, end = max(enumerate(spans), key=lambda item: (_decision_strength(tokens, *item[1], lexicon), item[0]))[1]
        words = [w for w in tokens[start:end] if w.is_word]
        head_end = max(k for k, w in enumerate(words) if w.lemma in lexicon.roles or w.norm in lexicon.roles)
        # the role up to its head word in nominative; what follows ("по производству", "филиалом") as said
        head = " ".join(
            analyze(w.text.lower()).lemma if k <= head_end and w.pos in ("ADJF", "NOUN") else w.norm
            for k, w in enumerate(words)
        )
        name = person_name_after(tokens, end)
        if name:
            return f"{head}, " + " ".join(_title(t.norm) for t in tokens[name[0] : name[1]])
        return head
    name = person_name_after(tokens, 0)
    if name and name[1] - name[0] >= 1:
        return " ".join(_title(t.norm) for t in tokens[name[0] : name[1]])
    norms = [t.norm for t in tokens if t.is_word]
    if "сам" in norms or "сама" in norms or ("я" in norms and any(t.lemma in lexicon.decision_verbs for t in tokens)):
        return "сам"
    return None


_DENIALS = frozenset({"нет", "нету", "никто", "никого", "никаких", "ничего", "ни"})


def yes_no_value(tokens: list[Token], lexicon: Lexicon) -> bool:
    """False when the span denies ("нет, никто не предлагал", "да нет"), True otherwise."""
    words = [t.norm for t in tokens if t.is_word][:8]
    if not words:
        return False
    if words[:2] == ["да", "нет"]:  # "да нет" means no
        return False
    if words[0] in _DENIALS:
        return False
    return not (_DENIALS & set(words[:6]) and words[0] not in lexicon.affirmations)


def number_value(tokens: list[Token]) -> float | int | None:
    """The first number said."""
    phrases = find_numbers(tokens)
    if not phrases:
        return None
    value = phrases[0].value
    return int(value) if float(value).is_integer() else value


def time_value(text: str, ref: date) -> tuple[str, date | None]:
    """The expression as said (lowercase, without hedges) and its date relative to the call."""
    said = re.sub(r"^(?:где-?\s?то|примерно|уже|только)\s+", "", text.strip(), flags=re.IGNORECASE)
    said = said.lower()
    return said, resolve_time_expression(said, ref)


def values_equal(a: AnswerValue, b: AnswerValue) -> bool:
    """Normalised values are equal: same bool, same number, or same text ignoring case/ё/punctuation."""
    if a is None or b is None:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(float(a) - float(b)) < 0.5
    return _canon(str(a)) == _canon(str(b))


def _canon(text: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", text.lower().replace("ё", "е")).split())


KIND_NEEDS_ENTITY = {
    QuestionKind.MONEY_RUB: True,
    QuestionKind.TIME_EXPRESSION: True,
    QuestionKind.ORGANIZATION: True,
    QuestionKind.PERSON_OR_ROLE: True,
    QuestionKind.NUMBER: True,
    QuestionKind.YES_NO: False,
    QuestionKind.TEXT: False,
}
