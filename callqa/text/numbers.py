"""Russian numbers in words or digits, and money amounts as people say them on the phone.

Handles inflected numerals ("пятистах", "полутора"), digits with decimal commas and
thousand spaces ("2,5", "1 500 000"), abbreviations ("млн", "тыс", "к"), and the spoken
shorthand of sales calls: "миллион семьсот" (1 700 000), "тысяч на семьсот пятьдесят"
(750 000), "девять и две" or "восемь четыреста" when the scale is clear from the call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from callqa.text.tokens import Token, morph_analyzer, tokenize

_UNITS = {
    "ноль": 0, "один": 1, "два": 2, "три": 3, "четыре": 4, "пять": 5, "шесть": 6, "семь": 7,
    "восемь": 8, "девять": 9, "десять": 10, "одиннадцать": 11, "двенадцать": 12,
    "тринадцать": 13, "четырнадцать": 14, "пятнадцать": 15, "шестнадцать": 16,
    "семнадцать": 17, "восемнадцать": 18, "девятнадцать": 19,
}  # fmt: skip
_TENS = {
    "двадцать": 20, "тридцать": 30, "сорок": 40, "пятьдесят": 50, "шестьдесят": 60,
    "семьдесят": 70, "восемьдесят": 80, "девяносто": 90,
}  # fmt: skip
_HUNDREDS = {
    "сто": 100, "двести": 200, "триста": 300, "четыреста": 400, "пятьсот": 500,
    "шестьсот": 600, "семьсот": 700, "восемьсот": 800, "девятьсот": 900,
}  # fmt: skip
_ORDINALS = {
    "первый": 1, "второй": 2, "третий": 3, "четвертый": 4, "пятый": 5, "шестой": 6,
    "седьмой": 7, "восьмой": 8, "девятый": 9, "десятый": 10, "одиннадцатый": 11,
    "двенадцатый": 12, "тринадцатый": 13, "четырнадцатый": 14, "пятнадцатый": 15,
    "шестнадцатый": 16, "семнадцатый": 17, "восемнадцатый": 18, "девятнадцатый": 19,
    "двадцатый": 20, "тридцатый": 30,
}  # fmt: skip
_SCALES = {"тысяча": 1_000, "миллион": 1_000_000, "миллиард": 1_000_000_000}
_SCALE_ABBREV = {
    "тыс": 1_000, "т": 1_000, "тр": 1_000, "к": 1_000, "косарь": 1_000,
    "млн": 1_000_000, "мл": 1_000_000, "лям": 1_000_000, "ляма": 1_000_000, "лямов": 1_000_000,
    "млрд": 1_000_000_000, "ярд": 1_000_000_000,
}  # fmt: skip
_HALF = {"полтора": 1.5, "полторы": 1.5}
CURRENCY = frozenset({"руб", "рубль", "р", "₽", "рублей", "рубля"})
# Units after a number that make it a quantity, not money.
_QUANTITY_UNITS = frozenset(
    {
        "штука",
        "шт",
        "процент",
        "метр",
        "м",
        "гектар",
        "га",
        "куб",
        "кубометр",
        "киловатт",
        "квт",
        "лошадь",
        "гигабайт",
        "гб",
        "копейка",
        "год",
        "лет",
        "день",
        "час",
        "минута",
        "человек",
        "место",
        "раз",
        "неделя",
        "месяц",
        "кг",
        "килограмм",
        "тонна",
        "литр",
        "квадрат",
        "км",
        "километр",
        "градус",
        "позиция",
        "единица",
        "машина",
        "окно",
        "станок",
        "комплект",
    }
)
_DIGITS = re.compile(r"^\d+(?:[.,]\d+)?$")


@lru_cache(maxsize=1)
def _word_table() -> dict[str, tuple[str, float]]:
    """Every inflected form of every numeral → (class, value); built once from pymorphy3 lexemes."""
    table: dict[str, tuple[str, float]] = {}
    analyzer = morph_analyzer()
    for cls, words in (
        ("unit", _UNITS),
        ("ten", _TENS),
        ("hundred", _HUNDREDS),
        ("scale", _SCALES),
        ("half", _HALF),
        ("ordinal", _ORDINALS),
    ):
        for word, value in words.items():
            table[word] = (cls, value)
            for parse in analyzer.parse(word)[:2]:
                if parse.normal_form.replace("ё", "е") != word.replace("ё", "е"):
                    continue
                for form in parse.lexeme:
                    table.setdefault(form.word.replace("ё", "е"), (cls, value))
    for word, value in _SCALE_ABBREV.items():
        table.setdefault(word, ("scale", value))
    # "одна", "одну", "две": feminine forms pymorphy3 files under other lemmas
    for word, value in {"одна": 1, "одну": 1, "одной": 1, "одно": 1, "две": 2, "двух": 2}.items():
        table[word] = ("unit", value)
    return table


def word_value(token: Token) -> tuple[str, float] | None:
    """(class, value) of a numeral token, or None."""
    if _DIGITS.match(token.norm):
        return ("digits", float(token.norm.replace(",", ".")))
    return _word_table().get(token.norm)


@dataclass(frozen=True, slots=True)
class NumberPhrase:
    """A run of tokens that reads as one number."""

    first: int  # token indices [first, last)
    last: int
    value: float
    scale: int  # the largest scale word inside (1 when none)
    decimal_and: bool = False  # "девять и две": a spoken decimal


def _is_half_tail(tokens: list[Token], i: int) -> bool:
    return i + 1 < len(tokens) and tokens[i].norm == "с" and tokens[i + 1].norm.startswith("половин")


def parse_number_at(tokens: list[Token], i: int) -> NumberPhrase | None:
    """Parse the longest number starting at token ``i`` (None when token ``i`` is no numeral)."""
    total = 0.0
    group: float | None = None
    order = 4  # 3 hundreds, 2 tens, 1 units: a group takes words of falling order only
    last_scale = 1
    decimal_and = False
    j = i
    n = len(tokens)
    while j < n:
        wv = word_value(tokens[j])
        if wv is None:
            if _is_half_tail(tokens, j) and (group is not None or total):
                group = (group or 0) + 0.5
                j += 2
                continue
            # "девять и две": a unit, "и", a unit → 9.2 (said instead of "девять и две десятых")
            if (
                tokens[j].norm == "и"
                and group is not None
                and group < 10
                and order <= 1
                and j + 1 < n
                and (nxt := word_value(tokens[j + 1])) is not None
                and nxt[0] in ("unit", "digits")
                and nxt[1] < 10
                and not (j + 2 < n and word_value(tokens[j + 2]) is not None)
            ):
                group = group + nxt[1] / 10
                decimal_and = True
                j += 2
                continue
            # "750 000": digit groups split by a space
            break
        cls, value = wv
        if cls == "digits":
            if group is not None:
                if tokens[j].norm.isdigit() and len(tokens[j].norm) == 3 and float(group).is_integer():
                    group = group * 1000 + value
                    j += 1
                    continue
                break
            group = value
            order = 0
        elif cls == "hundred":
            if group is not None and order <= 3:
                break
            group, order = (group or 0) + value, 3
        elif cls == "ten":
            if group is not None and order <= 2:
                break
            group, order = (group or 0) + value, 2
        elif cls == "unit":
            if group is not None and (order <= 1 or (value >= 10 and order <= 2)):
                break
            group, order = (group or 0) + value, 1
        elif cls == "half":
            if group is not None:
                break
            group, order = value, 0
        elif cls == "scale":
            # a bare scale word is a number only in the singular ("тысяча", not "тысяч")
            if j == i and tokens[j].norm not in ("тысяча", "миллион", "миллиард", "тысячу"):
                return None
            if group is None and total and last_scale <= value:
                break
            total += (group if group is not None else 1) * value
            last_scale = max(last_scale, int(value))
            group, order = None, 4
        else:  # ordinal: ends a phrase, handled by dates
            break
        j += 1
    if j == i:
        return None
    if group is not None:
        if last_scale >= 1_000_000 and group < 1000:
            total += group * last_scale / 1000  # "миллион семьсот" = 1 700 000
        else:
            total += group
    return NumberPhrase(i, j, total, last_scale, decimal_and)


def find_numbers(tokens: list[Token]) -> list[NumberPhrase]:
    """All number phrases in a token list, left to right, not overlapping."""
    phrases = []
    i = 0
    while i < len(tokens):
        phrase = parse_number_at(tokens, i)
        if phrase is None:
            i += 1
            continue
        phrases.append(phrase)
        i = phrase.last
    return phrases


def parse_number(text: str) -> float | None:
    """The value of the first number said in ``text`` ("двадцать два" → 22.0)."""
    phrases = find_numbers(tokenize(text))
    return phrases[0].value if phrases else None


@dataclass(frozen=True, slots=True)
class MoneyMention:
    start: int  # char offsets in the text the tokens came from
    end: int
    value: int
    explicit: bool  # a scale word or currency was said (not inferred from context)


_INVERSION_FILLERS = frozenset({"на", "за", "где-то", "примерно", "около", "что-то", "так", "с", "где", "то"})


def _next_word(tokens: list[Token], j: int) -> Token | None:
    while j < len(tokens) and not tokens[j].is_word:
        j += 1
    return tokens[j] if j < len(tokens) else None


def call_scale(text: str) -> int:
    """The money scale a call talks in: millions if anyone says "миллион"/"млн", else thousands."""
    norm = text.lower()
    return 1_000_000 if re.search(r"миллион|млн|лям", norm) else 1_000


def find_money(tokens: list[Token], context_scale: int = 1_000) -> list[MoneyMention]:
    """Money amounts in roubles.

    ``context_scale`` is the scale implied when none is said ("восемь четыреста" in a call
    about millions is 8 400 000); bare small numbers without scale or currency are not money.
    """
    mentions: list[MoneyMention] = []
    phrases = find_numbers(tokens)
    used = _inverted_scales(tokens, phrases, mentions)
    for k, ph in enumerate(phrases):
        if k in used:
            continue
        after = _next_word(tokens, ph.last)
        after_lemma = after.lemma if after else ""
        start, end = tokens[ph.first].start, tokens[ph.last - 1].end
        if after_lemma in _QUANTITY_UNITS or (after and after.norm in _QUANTITY_UNITS):
            continue
        if ph.scale > 1:
            mentions.append(MoneyMention(start, end, round(ph.value), True))
            continue
        if after and (after.norm in CURRENCY or after.lemma in CURRENCY):
            mentions.append(MoneyMention(start, after.end, round(ph.value), True))
            continue
        if ph.decimal_and:
            mentions.append(MoneyMention(start, end, round(ph.value * context_scale), False))
            continue
        # "восемь четыреста": a number under a thousand then a round hundreds group
        if k + 1 < len(phrases) and ph.value < 1000 and float(ph.value).is_integer():
            nxt = phrases[k + 1]
            between = [t for t in tokens[ph.last : nxt.first] if t.is_word]
            if (
                not between
                and nxt.scale == 1
                and 100 <= nxt.value < 1000
                and nxt.value % 10 == 0
                and not (tokens[ph.last].text in ",;" and nxt.value % 100)
            ):
                after2 = _next_word(tokens, nxt.last)
                if not (after2 and after2.lemma in _QUANTITY_UNITS):
                    value = ph.value * context_scale + nxt.value * context_scale / 1000
                    mentions.append(MoneyMention(start, tokens[nxt.last - 1].end, round(value), False))
                    used.add(k + 1)
    return sorted(mentions, key=lambda m: m.start)


def _inverted_scales(tokens: list[Token], phrases: list[NumberPhrase], out: list[MoneyMention]) -> set[int]:
    """Scale said before the number ("тысяч на семьсот пятьдесят" = 750 000); returns phrases used."""
    used: set[int] = set()
    starts = {ph.first: k for k, ph in enumerate(phrases)}
    inside = {i for ph in phrases for i in range(ph.first, ph.last)}
    for i, tok in enumerate(tokens):
        wv = _word_table().get(tok.norm) if i not in inside else None
        if wv is None or wv[0] != "scale" or tok.norm in ("т", "к"):
            continue
        j = i + 1
        while j < len(tokens) and (tokens[j].norm in _INVERSION_FILLERS or not tokens[j].is_word):
            j += 1
        k = starts.get(j)
        if k is None or j - i > 3 or phrases[k].scale > 1 or phrases[k].value >= 1000:
            continue
        value = phrases[k].value * wv[1]
        out.append(MoneyMention(tok.start, tokens[phrases[k].last - 1].end, round(value), True))
        used.add(k)
    return used


def parse_money(text: str, context_scale: int | None = None) -> int | None:
    """The last money amount said in ``text``, in roubles ("полтора миллиона" → 1 500 000).

    The last one, because people correct themselves: "восемь… нет, девять миллионов".
    """
    scale = context_scale or call_scale(text)
    mentions = find_money(tokenize(text), scale)
    return mentions[-1].value if mentions else None
