from __future__ import annotations

import pytest

from callqa.text.numbers import call_scale, find_money, parse_money, parse_number
from callqa.text.tokens import tokenize

MILLION = 1_000_000


@pytest.mark.parametrize(
    ("text", "roubles"),
    [
        ("полтора миллиона", 1_500_000),
        ("триста тысяч", 300_000),
        ("2,5 млн", 2_500_000),
        ("Девять миллионов двести", 9_200_000),  # trailing hundreds after millions are thousands
        ("миллион семьсот", 1_700_000),
        ("тысяч на семьсот пятьдесят", 750_000),  # scale said first
        ("в прошлый раз было тысяч восемнадцать что ли", 18_000),
        ("где то пятьсот шестьдесят тысяч", 560_000),
        ("на четыре с половиной миллиона", 4_500_000),
        ("В прошлом месяце на два миллиона триста ушло", 2_300_000),
        ("1 500 000 рублей", 1_500_000),
        ("12500 рублей", 12_500),
        ("500к", 500_000),
        ("пятистах тысячах рублей", 500_000),  # inflected numerals
        ("полторы тысячи", 1_500),
        ("четыре миллиона восемьсот тысяч", 4_800_000),
        ("тысячу двести рублей", 1_200),
    ],
)
def test_money_in_words_and_digits(text: str, roubles: int) -> None:
    assert parse_money(text) == roubles


@pytest.mark.parametrize(
    ("text", "scale", "roubles"),
    [
        ("восемь четыреста", MILLION, 8_400_000),  # shorthand in a call about millions
        ("сорок девять девятьсот в месяц", 1_000, 49_900),
        ("Где-то восемь… нет, девять и две, с доставкой", MILLION, 9_200_000),  # the correction wins
    ],
)
def test_spoken_shorthand_uses_the_call_scale(text: str, scale: int, roubles: int) -> None:
    assert parse_money(text, scale) == roubles


@pytest.mark.parametrize("text", ["двенадцать штук", "процентов на десять", "сто двадцать лошадей", "два токарных"])
def test_quantities_are_not_money(text: str) -> None:
    assert parse_money(text) is None


def test_money_mentions_carry_offsets_and_explicitness() -> None:
    text = "Ваше — четыре восемьсот, а у них три миллиона."
    mentions = find_money(tokenize(text), MILLION)
    assert [(text[m.start : m.end], m.value, m.explicit) for m in mentions] == [
        ("четыре восемьсот", 4_800_000, False),
        ("три миллиона", 3_000_000, True),
    ]


def test_numbers_and_scale_detection() -> None:
    assert parse_number("тысяча двести двадцать один") == 1221
    assert parse_number("семьсот шестьдесят восемь гигабайт") == 768
    assert parse_number("2,5") == 2.5
    assert call_scale("обсуждали три млн") == MILLION
    assert call_scale("цена двенадцать пятьсот") == 1_000
