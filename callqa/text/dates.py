"""Time expressions in Russian speech: find them, and resolve them to a date relative to the call.

People answer "when" with months ("к марту"), parts of periods ("в конце квартала"),
seasons ("к осени"), relative spans ("через месяц-полтора"), weekdays, holidays and farm or
weather events ("до сенокоса"). The expression is kept as said; the date is the earliest day
it points to (the start of a window, or a deadline), or None when it cannot be resolved.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

import dateparser
from dateutil.relativedelta import relativedelta

from callqa.text.tokens import normalize

_MONTHS = [
    (r"январ[ьяеюё]\w*", 1), (r"феврал[ьяеюё]\w*", 2), (r"март[аеуо]?м?", 3), (r"апрел[ьяеюё]\w*", 4),
    (r"ма[йяюе]", 5), (r"июн[ьяеюё]\w*", 6), (r"июл[ьяеюё]\w*", 7), (r"август[аеу]?м?", 8),
    (r"сентябр[ьяеюё]\w*", 9), (r"октябр[ьяеюё]\w*", 10), (r"ноябр[ьяеюё]\w*", 11),
    (r"декабр[ьяеюё]\w*", 12),
]  # fmt: skip
_ORDINAL_GEN = {
    "первого": 1, "второго": 2, "третьего": 3, "четвертого": 4, "пятого": 5, "шестого": 6,
    "седьмого": 7, "восьмого": 8, "девятого": 9, "десятого": 10, "одиннадцатого": 11,
    "двенадцатого": 12, "тринадцатого": 13, "четырнадцатого": 14, "пятнадцатого": 15,
    "шестнадцатого": 16, "семнадцатого": 17, "восемнадцатого": 18, "девятнадцатого": 19,
    "двадцатого": 20, "тридцатого": 30,
}  # fmt: skip
_WEEKDAYS = [
    (r"понедельник\w*", 0), (r"вторник\w*", 1), (r"сред[уаые]", 2), (r"четверг\w*", 3),
    (r"пятниц\w*", 4), (r"суббот\w*", 5), (r"воскресень\w*", 6),
]  # fmt: skip
_SEASONS = [(r"весн\w*", 3), (r"лет(?:ом|[оау])", 6), (r"осен\w*", 9), (r"зим(?:ой|[аеуы])", 12)]

_MONTH = "(?:" + "|".join(p for p, _ in _MONTHS) + ")"
_WEEKDAY = "(?:" + "|".join(p for p, _ in _WEEKDAYS) + ")"
_SEASON = "(?:" + "|".join(p for p, _ in _SEASONS) + ")"
_ORD = "(?:(?:двадцать|тридцать)\\s+)?(?:" + "|".join(_ORDINAL_GEN) + ")"
_DAYNUM = rf"(?:\d{{1,2}}(?:-?(?:го|е|ого))?|{_ORD})"
_NUMWORD = r"(?:пару|пар[уы]|два|две|три|четыре|пять|шесть|несколько|полтора|полторы|\d+)"
_UNIT = r"(?:дн(?:я|ей)|день|недел[юиь]\w*|месяц\w*|год\w*|лет|полгода)"
_PERIOD = r"(?:недел[иеюя]|месяц[аеу]?|год[ау]?|квартал[аеу]?|сезон[аеу]?|полугоди[яюе])"
_PART = r"(?:начал[еау]|конц[еау]|середин[еыу]|перв(?:ой|ую)\s+половин[еуы]|втор(?:ой|ую)\s+половин[еуы])"
_REL = r"(?:эт(?:ой|ом|от|у|а)|следующ\w+|текущ\w+|ближайш\w+|будущ\w+|прошл\w+)"
_EVENT = (
    r"(?:сенокос\w*|посевн\w*|уборк\w*|паводк\w*|жар\w*|сезон\w*|отпуск\w*|праздник\w*|урожа\w*|"
    r"отопительного\s+сезона|холодов|морозов|тепла)"
)
_LEAD = (
    r"(?:(?:не\s+)?(?:раньше|позже|позднее)\s+|ближе\s+к\s+|где-?\s?то\s+|примерно\s+|"
    r"в\s+районе\s+|уже\s+|только\s+)?"
)
_PREP = r"(?:(?:в|во|к|ко|до|на|после|через|с|со|по|в\s+течение|под|перед)\s+)?"

_CORES = [
    rf"{_DAYNUM}\s+{_MONTH}",
    rf"(?:{_PART}\s+)?{_MONTH}",
    rf"{_PART}\s+(?:{_REL}\s+)?{_PERIOD}",
    rf"{_REL}\s+{_PERIOD}",
    rf"(?:{_PART}\s+)?{_SEASON}",
    r"(?:(?:перв|втор|трет|четверт|[1-4])\w*[-\s]?(?:й|го|м)?\s+)квартал\w*",
    r"(?:перв|втор)\w+\s+полугоди\w+",
    rf"через\s+(?:{_NUMWORD}\s+)?{_UNIT}(?:[-\s]+полтора|[-\s]+два)?",
    r"в\s+течение\s+(?:(?:пары|двух|трех|нескольких)\s+)?(?:дн\w+|недел\w+|месяц\w*|год\w*)"
    r"(?:,?\s+максимум\s+(?:полтора|два|две))?",
    rf"(?:{_REL}\s+)?{_WEEKDAY}",
    r"нов(?:ого|ому|ый|ым)\s+год\w*",
    r"послезавтра|завтра|сегодня|на\s+днях|в\s+ближайшее\s+время|как\s+можно\s+скорее|вчера\s+надо\s+было",
    rf"{_ORD}(?:\s+числа)?|\d{{1,2}}(?:-?го)?\s+числа",
    rf"(?:до|к|после|перед|под)\s+{_EVENT}",
]
_PATTERN = re.compile(
    rf"(?<!\w){_LEAD}{_PREP}(?:{_PART}\s+)?(?:" + "|".join(_CORES) + r")(?!\w)",
    re.IGNORECASE,
)
# Words that begin a bare ordinal match but are almost never dates without a cue.
_ORD_NEEDS_CUE = re.compile(rf"^(?:{_ORD})(?:\s+числа)?$")


@dataclass(frozen=True, slots=True)
class TimeMention:
    start: int
    end: int
    text: str


def find_time_expressions(text: str) -> list[TimeMention]:
    """Time expressions in ``text`` with character offsets, left to right."""
    norm = normalize(text)
    if len(norm) != len(text):  # lower() changed the length: offsets would drift
        norm = text
    mentions = []
    for m in _PATTERN.finditer(norm):
        span = m.group(0)
        bare = span.strip()
        if _ORD_NEEDS_CUE.match(bare) and not re.search(r"\bчисла\b", bare):
            before = norm[max(0, m.start() - 12) : m.start()]
            if not re.search(r"(где-?\s?то|примерно|к|до|после|с|на)\s*$", before):
                continue
        mentions.append(TimeMention(m.start(), m.end(), text[m.start() : m.end()]))
    return mentions


def _last_day(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _part_day(part: str | None, year: int, month: int) -> date:
    if part is None or part.startswith("начал") or part.startswith("перв"):
        return date(year, month, 1)
    if part.startswith("середин"):
        return date(year, month, 15)
    if part.startswith("втор"):
        return date(year, month, 16)
    return _last_day(year, month)


def _next_year_if_past(month: int, ref: date) -> int:
    return ref.year if month >= ref.month else ref.year + 1


_UNIT_DELTA = {
    "дн": relativedelta(days=1), "ден": relativedelta(days=1), "недел": relativedelta(weeks=1),
    "месяц": relativedelta(months=1), "год": relativedelta(years=1), "лет": relativedelta(years=1),
    "полгода": relativedelta(months=6),
}  # fmt: skip
_COUNT = {"пару": 2, "пары": 2, "два": 2, "две": 2, "двух": 2, "три": 3, "трех": 3, "четыре": 4,
          "пять": 5, "шесть": 6, "несколько": 3, "нескольких": 3, "полтора": 1.5, "полторы": 1.5}  # fmt: skip


def _unit_delta(word: str) -> relativedelta | None:
    for prefix, delta in _UNIT_DELTA.items():
        if word.startswith(prefix):
            return delta
    return None


def _resolve_relative_period(s: str, ref: date) -> date | None:
    m = re.search(rf"(?:({_PART})\s+)?(?:({_REL})\s+)?({_PERIOD})", s)
    if not m:
        return None
    part, rel, period = m.group(1), m.group(2) or "", m.group(3)
    step = 1 if rel.startswith(("следующ", "будущ")) else (-1 if rel.startswith("прошл") else 0)
    if period.startswith("недел"):
        monday = ref - timedelta(days=ref.weekday()) + timedelta(weeks=step)
        if part and part.startswith("конц"):
            return monday + timedelta(days=4)
        return monday if step else max(monday, ref)
    if period.startswith("месяц"):
        first = (ref.replace(day=1)) + relativedelta(months=step)
        return _part_day(part, first.year, first.month) if part or step else ref
    if period.startswith("год"):
        year = ref.year + step
        if part and part.startswith("конц"):
            return date(year, 12, 31)
        return date(year, 1, 1) if step or part else ref
    if period.startswith("квартал"):
        q_start = 3 * ((ref.month - 1) // 3) + 1
        first = date(ref.year, q_start, 1) + relativedelta(months=3 * step)
        if part and part.startswith("конц"):
            return _last_day(first.year, first.month + 2)
        return first if step or part else ref
    if period.startswith("полугоди"):
        first = date(ref.year, 1 if ref.month <= 6 else 7, 1) + relativedelta(months=6 * step)
        return first
    return None


def resolve_time_expression(expression: str, ref: date) -> date | None:
    """The date a time expression points to, relative to ``ref`` (the call date); None if unknown.

    A plan is never in the past: a period that has already begun resolves to the call date.
    """
    s = normalize(expression).strip()
    resolved = _resolve(s, ref)
    if resolved is not None and resolved < ref and "прошл" not in s:
        return ref
    return resolved


def _resolve(s: str, ref: date) -> date | None:
    part_m = re.search(_PART, s)
    part = part_m.group(0) if part_m else None
    if re.search(r"вчера\s+надо|сегодня|сейчас|срочно|как\s+можно\s+скорее|на\s+днях", s):
        return ref
    if "послезавтра" in s:
        return ref + timedelta(days=2)
    if "завтра" in s:
        return ref + timedelta(days=1)
    if re.search(r"нов\w+\s+год", s):
        return date(ref.year + 1, 1, 1) if s.startswith("после") else date(ref.year, 12, 31)
    for pattern, month in _MONTHS:
        mm = re.search(rf"(?<!\w)(?:({_DAYNUM})\s+)?{pattern}(?!\w)", s)
        if mm:
            year = _next_year_if_past(month, ref)
            if mm.group(1):
                day = _day_number(mm.group(1))
                if day:
                    return date(year, month, min(day, calendar.monthrange(year, month)[1]))
            return _part_day(part, year, month)
    for pattern, start_month in _SEASONS:
        if re.search(rf"(?<!\w){pattern}(?!\w)", s):
            in_season = (ref.month - start_month) % 12 < 3
            if in_season and not part and not re.search(r"(?<!\w)(?:к|ко|до)\s", s):
                return ref
            year = ref.year if start_month > ref.month or start_month == 12 else ref.year + 1
            if part and part.startswith("конц"):
                end = date(year, start_month, 1) + relativedelta(months=2)
                return _last_day(end.year, end.month)
            return date(year, start_month, 1)
    qm = re.search(r"(перв|втор|трет|четверт|[1-4])\w*[-\s]?(?:й|го|м)?\s+квартал", s)
    if qm:
        q = {"перв": 1, "втор": 2, "трет": 3, "четверт": 4}.get(qm.group(1)) or int(qm.group(1))
        month = 3 * (q - 1) + 1
        year = ref.year if month + 2 >= ref.month else ref.year + 1
        return _part_day(part, year, month) if part else date(year, month, 1)
    hm = re.search(r"(перв|втор)\w+\s+полугоди", s)
    if hm:
        month = 1 if hm.group(1) == "перв" else 7
        year = ref.year if month + 5 >= ref.month else ref.year + 1
        return date(year, month, 1)
    rm = re.search(rf"(?:через|в\s+течение)\s+(?:({_NUMWORD}|\w+)\s+)?({_UNIT})", s)
    if rm:
        count = rm.group(1)
        n = _COUNT.get(count or "") if count and not count.isdigit() else (int(count) if count else 1)
        delta = _unit_delta(rm.group(2))
        if delta is not None:
            n = n or 1
            if delta.months and n != int(n):
                return ref + relativedelta(days=round(30 * delta.months * n))
            return ref + delta * int(n)
    for pattern, weekday in _WEEKDAYS:
        if re.search(rf"(?<!\w){pattern}(?!\w)", s):
            ahead = (weekday - ref.weekday()) % 7 or 7
            if re.search(r"следующ", s) and ahead < 7:
                ahead += 7 if ref.weekday() < weekday else 0
            return ref + timedelta(days=ahead)
    resolved = _resolve_relative_period(s, ref)
    if resolved:
        return resolved
    dm = re.search(rf"({_DAYNUM})(?:\s+числа)?", s)
    if dm and (day := _day_number(dm.group(1))):
        target = ref.replace(day=1) + (relativedelta(months=1) if day < ref.day else relativedelta())
        return target.replace(day=min(day, calendar.monthrange(target.year, target.month)[1]))
    return _dateparser_fallback(s, ref)


def _day_number(text: str) -> int | None:
    digits = re.match(r"\d{1,2}", text)
    if digits:
        day = int(digits.group(0))
        return day if 1 <= day <= 31 else None
    words = text.split()
    base = {"двадцать": 20, "тридцать": 30}.get(words[0], 0) if len(words) > 1 else 0
    return base + _ORDINAL_GEN.get(words[-1], 0) or None


@lru_cache(maxsize=4096)
def _dateparser_fallback(s: str, ref: date) -> date | None:
    parsed = dateparser.parse(
        s,
        languages=["ru"],
        settings={"RELATIVE_BASE": datetime(ref.year, ref.month, ref.day), "PREFER_DATES_FROM": "future"},
    )
    return parsed.date() if parsed else None
