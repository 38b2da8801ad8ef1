"""Phrase banks for the synthetic call generator, loaded from ``callqa/resources/synthetic/*.yaml``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from callqa.errors import ConfigError
from callqa.schemas import AnswerValue
from callqa.synthetic.russian import CASES, inflect_company

BANK_DIR = Path(__file__).parent.parent / "resources" / "synthetic"


@dataclass(frozen=True)
class Company:
    """A company name in all six cases (``forms["gen"]`` is "Абамета")."""

    forms: Mapping[str, str]

    @property
    def nom(self) -> str:
        return self.forms["nom"]


@dataclass(frozen=True)
class Item:
    """A noun phrase in the nominative ("сеялка") and accusative ("сеялку")."""

    nom: str
    acc: str


@dataclass(frozen=True)
class Role:
    """A decision-maker role phrase in the cases templates use."""

    nom: str
    ins: str
    dat: str


@dataclass(frozen=True)
class Industry:
    """What one industry's calls talk about: who sells what to whom, for how much."""

    id: str
    label: str
    b2c_share: float
    service: str
    we_do: str
    goods: Mapping[str, str]
    our_companies: tuple[str, ...]
    client_companies: tuple[str, ...]
    suppliers: tuple[Company, ...]
    partners: tuple[str, ...]
    contact_roles: tuple[str, ...]
    dm_roles: tuple[Role, ...]
    planned: tuple[Item, ...]
    frequent: tuple[str, ...]
    criteria: tuple[str, ...]
    start: tuple[str, ...]
    pitch: tuple[str, ...]
    amount: tuple[int, int]
    offer: tuple[int, int]
    issues: tuple[str, ...]
    complaints: tuple[str, ...]
    nps_context: tuple[str, ...]
    asks: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Template:
    """An answer template; ``value`` is set only where the template fixes it ("сам")."""

    text: str
    value: AnswerValue = None
    fixed: bool = False


@dataclass(frozen=True)
class QuestionBank:
    """How managers ask one question and how clients answer, dodge or refuse it."""

    qid: str
    ask: tuple[str, ...]
    ask_b2b: tuple[str, ...]
    ask_b2c: tuple[str, ...]
    state: tuple[str, ...]
    answers: Mapping[str, tuple[Template, ...]]
    dodge: tuple[str, ...]
    refuse: tuple[str, ...]
    b2c: bool

    def paraphrases(self, industry: Industry | None = None) -> tuple[str, ...]:
        """Every way to ask this question (generic, B2B, B2C and industry-specific)."""
        extra = industry.asks.get(self.qid, ()) if industry else ()
        return self.ask + self.ask_b2b + self.ask_b2c + extra


@dataclass(frozen=True)
class People:
    male: tuple[str, ...]
    female: tuple[str, ...]
    patronymics: tuple[tuple[str, str], ...]
    surnames: tuple[str, ...]
    dm_roles: tuple[Role, ...]


@dataclass(frozen=True)
class Bank:
    """Everything the generator says, apart from the code that decides what to say."""

    industries: tuple[Industry, ...]
    questions: Mapping[str, QuestionBank]
    people: People
    lines: Mapping[str, tuple[str, ...]]
    times: tuple[str, ...]
    callbacks: tuple[str, ...]
    nps_scores: Mapping[int, tuple[str, ...]]

    def line(self, key: str) -> tuple[str, ...]:
        """The phrase list under a dotted key of dialogue.yaml."""
        try:
            return self.lines[key]
        except KeyError:
            raise ConfigError(f"no phrase list {key!r} in the synthetic phrase banks") from None


def _tuple(items: Any) -> tuple[str, ...]:
    return tuple(str(x) for x in (items or ()))


def _company(raw: str | Mapping[str, str]) -> Company:
    if isinstance(raw, str):
        return Company(inflect_company(raw))
    missing = [c for c in CASES if c not in raw]
    if missing:
        raise ConfigError(f"company {raw} lacks the cases {missing}")
    return Company(dict(raw))


def _item(raw: str | Mapping[str, str]) -> Item:
    if isinstance(raw, str):
        return Item(raw, raw)
    return Item(raw["nom"], raw["acc"])


def _role(raw: Mapping[str, str]) -> Role:
    return Role(raw["nom"], raw["ins"], raw["dat"])


def _industry(raw: Mapping[str, Any]) -> Industry:
    return Industry(
        id=raw["id"],
        label=raw["label"],
        b2c_share=float(raw.get("b2c_share", 0.0)),
        service=str(raw.get("service", "equipment")),
        we_do=raw["we_do"],
        goods=dict(raw["goods"]),
        our_companies=_tuple(raw["our_companies"]),
        client_companies=_tuple(raw["client_companies"]),
        suppliers=tuple(_company(c) for c in raw["suppliers"]),
        partners=_tuple(raw["partners"]),
        contact_roles=_tuple(raw["contact_roles"]),
        dm_roles=tuple(_role(r) for r in raw.get("dm_roles", ())),
        planned=tuple(_item(i) for i in raw["planned"]),
        frequent=_tuple(raw["frequent"]),
        criteria=_tuple(raw["criteria"]),
        start=_tuple(raw["start"]),
        pitch=_tuple(raw["pitch"]),
        amount=(int(raw["amount"][0]), int(raw["amount"][1])),
        offer=(int(raw["offer"][0]), int(raw["offer"][1])),
        issues=_tuple(raw["issues"]),
        complaints=_tuple(raw["complaints"]),
        nps_context=_tuple(raw["nps_context"]),
        asks={k: _tuple(v) for k, v in (raw.get("asks") or {}).items()},
    )


def _template(raw: str | Mapping[str, Any]) -> Template:
    if isinstance(raw, str):
        return Template(raw)
    return Template(str(raw["text"]), raw["value"], fixed=True)


def _question(qid: str, raw: Mapping[str, Any]) -> QuestionBank:
    odd = [g for g in raw["answers"] if not isinstance(g, str)]
    if odd:  # YAML reads a bare `no:` key as False
        raise ConfigError(f"question {qid}: answer group names must be strings, got {odd} (quote them)")
    return QuestionBank(
        qid=qid,
        ask=_tuple(raw.get("ask")),
        ask_b2b=_tuple(raw.get("ask_b2b")),
        ask_b2c=_tuple(raw.get("ask_b2c")),
        state=_tuple(raw.get("state")),
        answers={group: tuple(_template(t) for t in items) for group, items in raw["answers"].items()},
        dodge=_tuple(raw.get("dodge")),
        refuse=_tuple(raw.get("refuse")),
        b2c=bool(raw.get("b2c", True)),
    )


def _flatten(node: Any, prefix: str = "") -> dict[str, tuple[str, ...]]:
    """Nested dialogue sections become dotted keys: ``{"closing": {"bye": [...]}}`` → ``"closing.bye"``."""
    if isinstance(node, list):
        return {prefix: _tuple(node)}
    out: dict[str, tuple[str, ...]] = {}
    for key, child in node.items():
        out.update(_flatten(child, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _times(raw: Mapping[str, Any]) -> tuple[str, ...]:
    """Fixed time expressions plus month patterns expanded over every month's case forms."""
    times = list(raw["fixed"])
    for month in raw["months"]:
        for pattern in raw["month_patterns"]:
            times.append(pattern.format(**month))
    return tuple(times)


def _callbacks(raw: Mapping[str, Any]) -> tuple[str, ...]:
    combos = [f"{day} {part}" for day in raw["days"] for part in raw["parts"]]
    return tuple(combos) + _tuple(raw["fixed"])


def _read(directory: Path, name: str) -> Any:
    path = directory / name
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the phrase bank: {exc}") from exc


@lru_cache(maxsize=4)
def load_bank(directory: Path = BANK_DIR) -> Bank:
    """Load and index the phrase banks (cached: they are read once per process)."""
    industries = _read(directory, "industries.yaml")
    people = _read(directory, "people.yaml")
    questions = _read(directory, "questions.yaml")
    dialogue = _read(directory, "dialogue.yaml")
    when = dialogue.pop("when")
    return Bank(
        industries=tuple(_industry(i) for i in industries["industries"]),
        questions={qid: _question(qid, raw) for qid, raw in questions.items()},
        people=People(
            male=_tuple(people["male"]),
            female=_tuple(people["female"]),
            patronymics=tuple(tuple(p.split("|")) for p in people["patronymics"]),  # type: ignore[misc]
            surnames=_tuple(people["surnames"]),
            dm_roles=tuple(_role(r) for r in people["dm_roles"]),
        ),
        lines=_flatten(dialogue),
        times=_times(when["next_purchase"]),
        callbacks=_callbacks(when["callback"]),
        nps_scores={int(k): _tuple(v) for k, v in when["nps_scores"].items()},
    )
