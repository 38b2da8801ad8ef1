from __future__ import annotations

from datetime import date

import pytest

from callqa.text.dates import find_time_expressions, resolve_time_expression

REF = date(2026, 11, 23)  # a Monday


@pytest.mark.parametrize(
    ("text", "expressions"),
    [
        ("Значит, реально закупка — первый квартал, ну, может, к марту.", ["первый квартал", "к марту"]),
        ("Брать буду в конце августа, как зерно продам.", ["в конце августа"]),
        ("в конце квартала наверное у нас склад новый открывается", ["в конце квартала"]),
        ("мебель нужна, грубо говоря, через месяц-полтора", ["через месяц-полтора"]),
        ("Да сейчас и надо, до сенокоса.", ["до сенокоса"]),
        ("следующая в начале следующей недели будет", ["в начале следующей недели"]),
        ("Следующая — где-то двадцатого, может, двадцать второго.", ["где-то двадцатого"]),
        ("Обновлять — во втором полугодии.", ["во втором полугодии"]),
        ("Вчера надо было, как обычно.", ["Вчера надо было"]),
        ("Последние два токарных нам Абамет поставлял. Второго поставщика нет.", []),
    ],
)
def test_finds_time_expressions_with_offsets(text: str, expressions: list[str]) -> None:
    found = find_time_expressions(text)
    assert [m.text for m in found] == expressions
    assert all(text[m.start : m.end] == m.text for m in found)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("к марту", date(2027, 3, 1)),
        ("в конце августа", date(2027, 8, 31)),
        ("к середине апреля", date(2027, 4, 15)),
        ("первый квартал", date(2027, 1, 1)),
        ("в конце квартала", date(2026, 12, 31)),
        ("через месяц-полтора", date(2026, 12, 23)),
        ("через две недели", date(2026, 12, 7)),
        ("в начале следующей недели", date(2026, 11, 30)),
        ("в четверг", date(2026, 11, 26)),
        ("завтра", date(2026, 11, 24)),
        ("до Нового года", date(2026, 12, 31)),
        ("к лету", date(2027, 6, 1)),
        ("к осени", date(2027, 9, 1)),  # autumn is nearly over: next autumn
        ("в ноябре", REF),  # a period already begun resolves to the call date, never the past
        ("во втором полугодии", REF),
        ("где-то двадцатого", date(2026, 12, 20)),
        ("15 марта", date(2027, 3, 15)),
        ("до сенокоса", None),
    ],
)
def test_resolves_relative_to_the_call_date(expression: str, expected: date | None) -> None:
    assert resolve_time_expression(expression, REF) == expected
