"""Just enough Russian morphology for the generator: name cases, plurals, amounts said aloud."""

from __future__ import annotations

import random
from dataclasses import dataclass

from num2words import num2words

CASES = ("nom", "gen", "dat", "acc", "ins", "pre")
_CONSONANTS = "бвгджзклмнпрстфхцчшщ"
_HUSHING = "жшчщц"
_VELAR_OR_HUSHING = "гкхжшчщ"

MILLION = ("миллион", "миллиона", "миллионов")
THOUSAND = ("тысяча", "тысячи", "тысяч")
_HALF_MILLION = (
    "миллиона",
    "миллиона",
    "миллионов",
)  # "два с половиной миллиона", "пять с половиной миллионов"


def _forms(*forms: str) -> dict[str, str]:
    return dict(zip(CASES, forms, strict=True))


def inflect_company(name: str) -> dict[str, str]:
    """Case forms of a one-word company name, guessed from its ending (others stay indeclinable)."""
    last = name[-1].lower()
    stem = name[:-1]
    if last in _CONSONANTS:
        ins = "ем" if last in _HUSHING else "ом"
        return _forms(name, name + "а", name + "у", name, name + ins, name + "е")
    if last in "ьй":
        return _forms(name, stem + "я", stem + "ю", name, stem + "ем", stem + "е")
    if name.lower().endswith("ия"):
        return _forms(name, stem + "и", stem + "и", stem + "ю", stem + "ей", stem + "и")
    if last == "я":
        return _forms(name, stem + "и", stem + "е", stem + "ю", stem + "ей", stem + "е")
    if last == "а":
        gen = "и" if stem[-1].lower() in _VELAR_OR_HUSHING else "ы"
        ins = "ей" if stem[-1].lower() in _HUSHING else "ой"
        return _forms(name, stem + gen, stem + "е", stem + "у", stem + ins, stem + "е")
    return dict.fromkeys(CASES, name)


def feminine_surname(surname: str) -> str:
    """The feminine form of a masculine surname (Лапин → Лапина, Зарецкий → Зарецкая)."""
    if surname.endswith(("ов", "ев", "ёв", "ин", "ын")):
        return surname + "а"
    if surname.endswith(("ский", "цкий")):
        return surname[:-2] + "ая"
    if surname.endswith("ой"):
        return surname[:-2] + "ая"
    return surname


def plural(n: int, forms: tuple[str, str, str]) -> str:
    """The noun form agreeing with ``n``: (1 миллион, 2 миллиона, 5 миллионов)."""
    n = abs(n)
    if n % 10 == 1 and n % 100 != 11:
        return forms[0]
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return forms[1]
    return forms[2]


def number_words(n: int) -> str:
    """A cardinal number in words, the way people say it ("миллион семьсот тысяч", not "один миллион")."""
    text = num2words(n, lang="ru")
    for lead in ("один миллион", "одна тысяча"):
        if text.startswith(lead):
            text = text.removeprefix("один ").removeprefix("одна ")
    return text


@dataclass(frozen=True)
class Amount:
    """An amount of roubles as the client says it, bare ("полтора миллиона") and after "на"."""

    value: int
    bare: str
    with_na: str
    style: str


def round_amount(lo: int, hi: int, rng: random.Random) -> int:
    """A plausible, round purchase amount between lo and hi roubles."""
    raw = rng.uniform(lo, hi)
    step = 100_000 if raw >= 1_000_000 else 10_000 if raw >= 100_000 else 1_000
    return max(step, round(raw / step) * step)


def say_amount(value: int, rng: random.Random, *, digits: bool, exact: bool = False) -> Amount:
    """One spoken (or, with ``digits``, written) form of an amount, chosen at random among natural ones.

    ``exact`` leaves out the approximate inverted forms ("тысяч восемнадцать"): prices are quoted exactly.
    """
    options = _digit_forms(value) if digits else _word_forms(value)
    if exact:
        options = [o for o in options if o[0] != "inverted"]
    style, bare, with_na = rng.choice(options)
    return Amount(value=value, bare=bare, with_na=with_na, style=style)


def _word_forms(value: int) -> list[tuple[str, str, str]]:
    words = number_words(value)
    forms = [("words", words, f"на {words}")]
    millions, rest = divmod(value, 1_000_000)
    if millions and rest and rest % 100_000 == 0:
        head = "миллион" if millions == 1 else f"{number_words(millions)} {plural(millions, MILLION)}"
        short = f"{head} {number_words(rest // 1000)}"
        forms.append(("colloquial", short, f"на {short}"))
        if rest == 500_000:
            half = (
                "полтора миллиона"
                if millions == 1
                else f"{number_words(millions)} с половиной {plural(millions, _HALF_MILLION)}"
            )
            forms.append(("half", half, f"на {half}"))
    if value == 500_000:
        forms.append(("half", "пол-миллиона", "на пол-миллиона"))
    thousands = value // 1000
    if not millions and value % 1000 == 0 and thousands % 10 not in (1, 2) and thousands > 10:
        spoken = number_words(thousands)
        forms.append(("inverted", f"тысяч {spoken}", f"тысяч на {spoken}"))
    return forms


def _digit_forms(value: int) -> list[tuple[str, str, str]]:
    grouped = f"{value:,}".replace(",", " ")
    forms = [("digits", f"{grouped} рублей", f"на {grouped} рублей")]
    millions, rest = divmod(value, 1_000_000)
    if millions and rest % 100_000 == 0:
        short = f"{millions},{rest // 100_000}" if rest else str(millions)
        forms.append(("digits", f"{short} млн", f"на {short} млн"))
    elif value % 1000 == 0:
        thousands = value // 1000
        unit = plural(thousands, THOUSAND)
        forms.append(("digits", f"{thousands} {unit}", f"на {thousands} {unit}"))
        forms.append(("digits", f"{thousands} тыс. рублей", f"на {thousands} тыс. рублей"))
    return forms
