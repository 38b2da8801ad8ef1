from __future__ import annotations

import pytest

from callqa.settings import get_settings
from callqa.text.lexicon import load_lexicon
from callqa.text.tokens import tokenize
from callqa.understanding.normalize import organization_value, role_value, values_equal, yes_no_value


@pytest.fixture(scope="module")
def lexicon():
    return load_lexicon(get_settings().lexicon)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Последние два токарных нам Абамет поставлял", "Абамет"),
        ("Мы у Севзапкабеля берём", "Севзапкабель"),
        ("Пакеты — Пластик-Юг нам возит", "Пластик-Юг"),
        ("работаем с компанией «Мебельный стиль»", "Мебельный стиль"),
        # an adjective + noun name said with the noun in lower case: both words to the nominative
        ("Одно от Мебельного стиля, мы у них брали", "Мебельный стиль"),
        ("из Северной звезды возим", "Северная звезда"),
        ("у Мебельных систем", "Мебельные системы"),
        # an unknown name takes the case its preposition governs
        ("Да погоди ты с Акросом", "Акрос"),
        ("ну в основном в ситилинке через юрлицо", "Ситилинк"),
        ("у них свой поставщик давно есть", None),
        # business abbreviations and drawn-out sounds are not companies
        ("Да, два КП уже лежат, и счёт с НДС", None),
        ("А-а. Ну, М-м-м, не помню", None),
    ],
)
def test_organization_names_in_nominative(lexicon, text: str, value: str | None) -> None:
    assert organization_value(tokenize(text), lexicon) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("А подписывает, конечно, генеральный, Олег Николаевич.", "генеральный, Олег Николаевич"),
        ("решает финансовый директор, Глеб Аркадьевич", "финансовый директор, Глеб Аркадьевич"),
        # the final say beats taking part, whatever the order
        ("технолог согласовывает, а утверждает коммерческий директор", "коммерческий директор"),
        ("Сам. Я и есть хозяйство", "сам"),
    ],
)
def test_decision_maker_role_and_name(lexicon, text: str, value: str) -> None:
    assert role_value(tokenize(text), lexicon) == value


def test_yes_no(lexicon) -> None:
    assert yes_no_value(tokenize("Нет, никого пока не смотрели"), lexicon) is False
    assert yes_no_value(tokenize("да нет сейчас нету"), lexicon) is False
    assert yes_no_value(tokenize("у нас уже есть предложение от Грундфоса"), lexicon) is True


def test_values_equal_by_type() -> None:
    assert values_equal(1_500_000, 1500000.0)
    assert values_equal("Ситилинк, Регард", "ситилинк регард")
    assert values_equal("Пётр", "петр")
    assert values_equal(True, True)
    assert not values_equal(True, 1)  # a bool is not a number
    assert not values_equal(None, None)  # two missing values are no evidence of a match
