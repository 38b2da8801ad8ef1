"""Synthetic labelled sales calls: varied Russian B2B dialogues with exact gold answers and error labels.

Every call is planned first (call type, manager quality, target errors, which questions are asked and
how the client answers), then written turn by turn from the phrase banks, then labelled from what was
actually written: answer spans come from the template marks, errors from the text and the plan, so a
label never claims something the transcript does not show.
"""

from __future__ import annotations

import itertools
import logging
import random
import re
import time
from dataclasses import dataclass, field

from callqa.errors import BadInput
from callqa.schemas import AnswerValue, CallType, ErrorId, GoldAnswer, LabelledCall, Speaker, Turn
from callqa.synthetic.asr import render_asr
from callqa.synthetic.bank import Bank, Industry, Role, Template, load_bank
from callqa.synthetic.markup import CODES, capitalise, fill, parse
from callqa.synthetic.russian import feminine_surname, round_amount, say_amount

log = logging.getLogger(__name__)

QUESTION_IDS = (
    "current_supplier",
    "next_purchase",
    "last_purchase_amount",
    "decision_process",
    "selection_criteria",
    "decision_maker",
    "planned_equipment",
    "competitor_offers",
    "frequent_items",
    "start_conditions",
)
STATEMENT_SPAN_RATE = 0.5
SYNTHETIC_PREFIX = "syn-"  # every generated call's id starts so (``is_synthetic``)
_SENTENCE_END = re.compile(r"[.!?…]+(?:\s+|$)")
REQUIRED = tuple(q for q in QUESTION_IDS if q != "competitor_offers")
NEEDS = ("planned_equipment", "selection_criteria", "frequent_items")
SALES = (CallType.COLD_CALL, CallType.FOLLOW_UP, CallType.INBOUND_SALE)

# Call-type mix: questionnaire-rich sales calls dominate, as in a real sales department's recordings.
CALL_TYPE_WEIGHTS = {
    CallType.COLD_CALL: 0.25,
    CallType.FOLLOW_UP: 0.17,
    CallType.INBOUND_SALE: 0.17,
    CallType.INBOUND_SERVICE: 0.09,
    CallType.COMPLAINT: 0.08,
    CallType.WHERE_TO_BUY: 0.08,
    CallType.NPS_SURVEY: 0.08,
    CallType.SPAM: 0.08,
}
# Errors a call type can show at all (a spam caller is not our manager; an NPS survey sells nothing).
APPLICABLE_ERRORS = {
    **dict.fromkeys(SALES, tuple(ErrorId)),
    CallType.INBOUND_SERVICE: (
        ErrorId.NO_INTRODUCTION,
        ErrorId.FILLER_WORDS,
        ErrorId.INTERRUPTION,
        ErrorId.NO_NEXT_STEP,
        ErrorId.VALUE_REDUCING_WORDS,
    ),
    CallType.COMPLAINT: (
        ErrorId.NO_INTRODUCTION,
        ErrorId.FILLER_WORDS,
        ErrorId.INTERRUPTION,
        ErrorId.NO_NEXT_STEP,
        ErrorId.VALUE_REDUCING_WORDS,
    ),
    CallType.WHERE_TO_BUY: (ErrorId.NO_INTRODUCTION, ErrorId.FILLER_WORDS, ErrorId.VALUE_REDUCING_WORDS),
    CallType.NPS_SURVEY: (
        ErrorId.NO_INTRODUCTION,
        ErrorId.FILLER_WORDS,
        ErrorId.VALUE_REDUCING_WORDS,
        ErrorId.INTERRUPTION,
    ),
    CallType.SPAM: (ErrorId.NO_INTRODUCTION,),
}
# What a client may mention unprompted outside a sales conversation.
NON_SALES_VOLUNTEERED = {
    CallType.INBOUND_SERVICE: ("frequent_items", "last_purchase_amount"),
    CallType.COMPLAINT: ("frequent_items",),
    CallType.NPS_SURVEY: ("planned_equipment", "next_purchase"),
}
QUALITY_ERROR_RATE = {"strong": 0.04, "average": 0.2, "weak": 0.5}

# What the labels are computed from: the agent's own words.
# Both match raw-ASR renderings too ("в общем то", "извините что беспокою", "дешевенькое").
FILLER_RE = re.compile(r"(?<![а-яё])(короче|как бы|типа|в общем[- ]то|ну это|э[- ]э)(?![а-яё])", re.IGNORECASE)
VALUE_REDUCING_RE = re.compile(
    r"извините,? что беспокою|не задержу|скидочк|недорог|деш[её]веньк|буквально минутк", re.IGNORECASE
)

# How the client answers a question the agent asked; groups are keys of questions.yaml `answers`.
ANSWER_STYLES = ("direct", "indirect", "self_correct", "two", "confirm_repeat")
NULL_STYLES = ("dodge", "refuse", "confirm_bare")


@dataclass(frozen=True)
class Person:
    first: str
    patronymic: str
    surname: str
    female: bool

    @property
    def formal(self) -> str:
        return f"{self.first} {self.patronymic}"


@dataclass(frozen=True)
class DecisionMaker:
    """Who decides: a role (maybe named), or the client alone, together with someone, or the spouse."""

    kind: str
    role: Role | None = None
    name: str | None = None

    @property
    def said(self) -> str:
        assert self.role is not None
        return f"{self.role.nom}, {self.name}" if self.name else self.role.nom


@dataclass
class Part:
    """A piece of a turn: text plus the answer spans inside it (offsets into ``text``)."""

    text: str
    spans: list[tuple[str, int, int, AnswerValue]] = field(default_factory=list)
    fillable: bool = False


@dataclass
class DraftTurn:
    speaker: Speaker
    parts: list[Part]
    asks: tuple[str, ...] = ()
    pitch: bool = False


@dataclass
class Plan:
    """Decisions taken before writing: the rest of the call follows from them."""

    call_type: CallType
    quality: str
    targets: set[ErrorId]
    b2c: bool
    asked: list[tuple[str, str]] = field(default_factory=list)
    volunteered: list[str] = field(default_factory=list)
    objection: str | None = None
    objection_at: int = 0


class CallWriter:
    """Writes one call: plans it, speaks it turn by turn, then labels what was written."""

    plan: Plan
    industry: Industry

    def __init__(self, bank: Bank, rng: random.Random, call_id: str) -> None:
        self.bank = bank
        self.rng = rng
        self.call_id = call_id
        self.turns: list[DraftTurn] = []
        self.placed: set[str] = set()  # questions whose gold answer is already in the call
        self.styles: dict[str, str] = {}  # how the client answered each asked question, for the notes
        self.notes: list[str] = []
        self.callback: str | None = None
        self.nps: int | None = None
        self.introduced = True
        self.next_step: bool | None = None
        self.given_in = False
        self.ended_at_gatekeeper = False
        self.pending: list[str] = []
        self.last_style = ""
        self.used: set[tuple[str, str]] = set()

    # ---- planning -------------------------------------------------------------------------------

    def choose_plan(self) -> Plan:
        """Call type, manager quality, industry and the errors to show."""
        rng = self.rng
        call_type = rng.choices(list(CALL_TYPE_WEIGHTS), weights=list(CALL_TYPE_WEIGHTS.values()))[0]
        quality = rng.choices(["strong", "average", "weak"], weights=[0.45, 0.35, 0.2])[0]
        rate = QUALITY_ERROR_RATE[quality]
        targets = {e for e in APPLICABLE_ERRORS[call_type] if rng.random() < rate}
        if ErrorId.OBJECTION_NOT_HANDLED in targets:
            targets.add(ErrorId.NO_NEXT_STEP)  # giving in to an objection is how such calls end
        if ErrorId.NO_NEEDS_DISCOVERY in targets:
            targets.add(ErrorId.INCOMPLETE_QUALIFICATION)
        self.industry = rng.choice(self.bank.industries)
        b2c = call_type != CallType.SPAM and rng.random() < self.industry.b2c_share
        return Plan(call_type, quality, targets, b2c)

    def plan_questions(self, plan: Plan) -> None:
        """Choose which questions the agent asks, in what order and style, and what the client volunteers."""
        rng = self.rng
        available = [q for q in REQUIRED if not plan.b2c or self.bank.questions[q].b2c]
        volunteer_rate = 0.35 if ErrorId.INCOMPLETE_QUALIFICATION in plan.targets else 0.15
        volunteered = [q for q in QUESTION_IDS if q in available and rng.random() < volunteer_rate]
        if plan.call_type == CallType.INBOUND_SALE and rng.random() < 0.8:
            volunteered.insert(0, "planned_equipment")  # inbound clients open with what they need
        volunteered = list(dict.fromkeys(volunteered))
        if plan.call_type not in SALES:
            plan.volunteered = [q for q in NON_SALES_VOLUNTEERED.get(plan.call_type, ()) if rng.random() < 0.5]
            return
        pool = [q for q in available if q not in volunteered]
        needs = [q for q in pool if q in NEEDS]
        if not needs and ErrorId.NO_NEEDS_DISCOVERY not in plan.targets:
            # A manager who discovers needs must have a needs question left to ask.
            spare = [q for q in NEEDS if q in volunteered and q != volunteered[0]] or [
                q for q in NEEDS if q in volunteered
            ]
            if spare:
                volunteered.remove(spare[0])
                needs = [spare[0]]
                pool.append(spare[0])
        others = [q for q in pool if q not in NEEDS]
        if ErrorId.NO_NEEDS_DISCOVERY in plan.targets:
            chosen = rng.sample(others, min(len(others), rng.randint(0, 2)))
        elif ErrorId.INCOMPLETE_QUALIFICATION in plan.targets:
            first = rng.sample(needs, 1) if needs else []
            chosen = first + rng.sample(others, min(len(others), rng.randint(0, 2)))
        else:
            first = rng.sample(needs, 1) if needs else []
            rest = [q for q in pool if q not in first]
            chosen = first + rng.sample(rest, min(len(rest), rng.randint(4, 6)))
        if chosen and rng.random() < 0.5:
            chosen.insert(rng.randint(1, len(chosen)), "competitor_offers")
        head, tail = chosen[:1], chosen[1:]
        rng.shuffle(tail)
        plan.asked = [(q, self._style(q, plan.quality)) for q in head + tail]
        plan.volunteered = volunteered
        self._plan_objection(plan)

    def _plan_objection(self, plan: Plan) -> None:
        rng = self.rng
        must = ErrorId.OBJECTION_NOT_HANDLED in plan.targets
        rate = {CallType.INBOUND_SALE: 0.3}.get(plan.call_type, 0.55)
        if must or rng.random() < rate:
            plan.objection = rng.choice(["have_supplier", "expensive", "send_email", "no_time", "think"])
            if plan.call_type == CallType.FOLLOW_UP and rng.random() < 0.4:
                plan.objection = "expensive"  # they have seen the offer
            # An unhandled objection ends the call, so it comes late; a handled one anywhere.
            last = len(plan.asked)
            plan.objection_at = last if must else rng.randint(0, max(0, last - 1))

    def _style(self, qid: str, quality: str) -> str:
        rng = self.rng
        styles = {"direct": 0.36, "indirect": 0.3, "dodge": 0.1, "refuse": 0.05}
        if qid in ("current_supplier", "next_purchase", "last_purchase_amount"):
            styles["self_correct"] = 0.06
        if qid in ("current_supplier", "last_purchase_amount", "decision_maker", "next_purchase"):
            styles["confirm_bare"] = 0.05
            styles["confirm_repeat"] = 0.05
        # The agent can only state a fact he knows from before: in a follow-up.
        knows = self.plan.call_type == CallType.FOLLOW_UP and bool(self.bank.questions[qid].state)
        if not knows or (qid == "decision_maker" and self.dm.kind != "role"):
            styles.pop("confirm_bare", None)
            styles.pop("confirm_repeat", None)
        if qid == "current_supplier":
            styles["two"] = 0.08
        if qid == "competitor_offers":
            styles = {"direct": 0.35, "indirect": 0.25, "no": 0.3, "dodge": 0.1}
        if quality == "weak":
            styles["dodge"] = styles.get("dodge", 0) + 0.1
        return rng.choices(list(styles), weights=list(styles.values()))[0]

    # ---- facts and slots ----------------------------------------------------------------------------

    def cast(self, plan: Plan) -> None:
        """Pick the people, companies, amounts and times this call talks about."""
        rng, ind, bank = self.rng, self.industry, self.bank
        self.agent_person = self._person()
        self.client_person = self._person()
        self.gatekeeper_person = self._person(female=rng.random() < 0.8)
        firms = rng.sample(ind.suppliers, 4)
        self.sup, self.sup2, self.alt, self.comp = firms
        if rng.random() < 0.2:
            self.comp = self.sup  # the current supplier is often also the one quoting
        self.time, self.time_alt = rng.sample(bank.times, 2)
        digits = rng.random() < 0.25
        value = round_amount(*ind.amount, rng)
        self.money = say_amount(value, rng, digits=digits)
        self.money_alt = say_amount(self._other_amount(value), rng, digits=False)
        offer = self._other_amount(round_amount(*ind.offer, rng), avoid=value)
        self.offer = say_amount(offer, rng, digits=False, exact=True)
        self.comp_price = say_amount(self._other_amount(offer, avoid=value), rng, digits=False, exact=True)
        self.dm = self._decision_maker(plan.b2c)
        self.planned = rng.choice(ind.planned)
        self.crit, self.crit2 = rng.sample(ind.criteria + bank.line("generic.criteria"), 2)
        self.slots = self._slots()
        self.genders = {
            "a": self.agent_person.female,
            "c": self.client_person.female,
            "g": self.gatekeeper_person.female,
        }

    def _person(self, female: bool | None = None) -> Person:
        rng, people = self.rng, self.bank.people
        female = rng.random() < 0.5 if female is None else female
        first = rng.choice(people.female if female else people.male)
        patronymic = rng.choice(people.patronymics)[1 if female else 0]
        surname = rng.choice(people.surnames)
        return Person(first, patronymic, feminine_surname(surname) if female else surname, female)

    def _other_amount(self, value: int, avoid: int | None = None) -> int:
        rng = self.rng
        while True:
            step = 100_000 if value >= 1_000_000 else 10_000 if value >= 100_000 else 1_000
            other = max(step, value + rng.choice([-3, -2, -1, 1, 2, 3]) * step)
            if other not in (value, avoid):
                return other

    def _decision_maker(self, b2c: bool) -> DecisionMaker:
        rng = self.rng
        if b2c:
            return DecisionMaker(rng.choice(["self", "together", "spouse"]))
        kind = rng.choices(["role", "self", "together"], weights=[0.82, 0.12, 0.06])[0]
        if kind != "role":
            return DecisionMaker(kind)
        role = rng.choice(self.industry.dm_roles + self.bank.people.dm_roles)
        name = self._person().formal if rng.random() < 0.3 else None
        return DecisionMaker("role", role, name)

    def _slots(self) -> dict[str, str]:
        rng, ind = self.rng, self.industry
        our = rng.choice(ind.our_companies)
        slots: dict[str, str] = {
            "our": f"«{our}»" if rng.random() < 0.6 else our,
            "agent": self.agent_person.first,
            "agent_full": f"{self.agent_person.first} {self.agent_person.surname}",
            "client": self.client_person.first,
            "client_formal": self.client_person.formal,
            "client_role": rng.choice(ind.contact_roles),
            "client_co": rng.choice(ind.client_companies),
            "gk": self.gatekeeper_person.first,
            "we_do": ind.we_do,
            "time": self.time,
            "time_alt": self.time_alt,
            "money": self.money.bare,
            "money_na": self.money.with_na,
            "money_alt": self.money_alt.bare,
            "offer": self.offer.bare,
            "offer_na": self.offer.with_na,
            "comp_price": self.comp_price.bare,
            "planned": self.planned.acc,
            "planned_nom": self.planned.nom,
            "frequent": rng.choice(ind.frequent),
            "crit": self.crit,
            "crit2": self.crit2,
            "start": rng.choice(ind.start),
            "pitch": rng.choice(ind.pitch),
            "partner": "",
            "partner2": "",
            "issue": rng.choice(ind.issues),
            "complaint": rng.choice(ind.complaints),
            "nps_ctx": rng.choice(ind.nps_context),
            "greet": rng.choice(self.bank.line("generic.greet")),
            "city": rng.choice(self.bank.line("generic.cities")),
            "street": rng.choice(self.bank.line("generic.streets")),
            "weekday": rng.choice(self.bank.line("generic.weekdays")),
            "meet_time": rng.choice(self.bank.line("generic.meet_times")),
            "callback": "",
        }
        slots["partner"], slots["partner2"] = rng.sample(ind.partners, 2)
        for key, value in ind.goods.items():
            slots[f"goods.{key}"] = value
        for name, company in (("sup", self.sup), ("sup2", self.sup2), ("alt", self.alt), ("comp", self.comp)):
            for case, form in company.forms.items():
                slots[f"{name}.{case}"] = form
        role = self.dm.role
        slots["dm"] = self.dm.said if role else ""
        slots["dm_role"] = role.nom if role else ""
        slots["dm_ins"] = role.ins if role else ""
        slots["dm_dat"] = role.dat if role else ""
        return slots

    # ---- writing primitives -------------------------------------------------------------------------

    def say(self, key: str, *, fillable: bool = False, **extra: str) -> Part:
        """A plain line (no answer span) picked from a phrase list, avoiding lines already said."""
        options = self.bank.line(key)
        fresh = [o for o in options if (key, o) not in self.used] or list(options)
        template = self.rng.choice(fresh)
        self.used.add((key, template))
        return self.text(template, fillable=fillable, **extra)

    def text(
        self,
        template: str,
        *,
        qid: str | None = None,
        group: str = "",
        fillable: bool = False,
        value: AnswerValue = None,
        fixed: bool = False,
        **extra: str,
    ) -> Part:
        """Fill and parse a template; marked spans become gold answers (own span → ``qid``)."""
        slots = {**self.slots, **extra} if extra else self.slots
        plain, marks = parse(fill(template, slots, self.rng, self.genders))
        if fixed and isinstance(value, str):
            value = fill(value, slots, self.rng, self.genders)  # "{c:сам|сама}" follows the speaker
        part = Part(plain, fillable=fillable and not marks)
        for mark in marks:
            target = CODES[mark.code] if mark.code else qid
            if target is None or target in self.placed or mark.start >= mark.end:
                continue
            own = not mark.code
            span_value = value if own and fixed else self._value(target, template, group if own else "")
            part.spans.append((target, mark.start, mark.end, span_value))
            self.placed.add(target)
        return part

    def _value(self, qid: str, template: str, group: str) -> AnswerValue:
        if qid == "current_supplier":
            if "{sup2" in template:
                return f"{self.sup.nom}, {self.sup2.nom}"
            return self.sup.nom
        if qid == "next_purchase":
            return self.time.lower()
        if qid == "last_purchase_amount":
            return self.money.value
        if qid == "decision_maker":
            assert self.dm.role is not None
            return self.dm.said if "{dm}" in template else self.dm.role.nom
        if qid == "competitor_offers":
            return group != "no"
        return None

    def answer(self, qid: str, group: str) -> Part | None:
        """A client answer to ``qid`` from a template group (None when the group cannot fit this call)."""
        bank = self.bank.questions[qid]
        if qid == "decision_maker" and self.dm.kind != "role":
            group = self.dm.kind
        if self.plan.b2c and f"{group}_b2c" in bank.answers and self.rng.random() < 0.7:
            group = f"{group}_b2c"
        options = [t for t in bank.answers.get(group, ()) if self._fits(t)]
        if not options:
            return None
        chosen: Template = self.rng.choice(options)
        return self.text(chosen.text, qid=qid, group=group, value=chosen.value, fixed=chosen.fixed)

    def _fits(self, template: Template) -> bool:
        """Nested spans may only say what is not yet said, and a role only when there is one."""
        if "[dm[" in template.text and ("decision_maker" in self.placed or self.dm.kind != "role"):
            return False
        return not ("{dm" in template.text and self.dm.kind != "role")

    def agent(self, *parts: Part | None, asks: tuple[str, ...] = (), pitch: bool = False) -> None:
        self.turns.append(DraftTurn(Speaker.AGENT, [p for p in parts if p], asks, pitch))

    def client(self, *parts: Part | None) -> None:
        self.turns.append(DraftTurn(Speaker.CLIENT, [p for p in parts if p]))

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def has(self, error: ErrorId) -> bool:
        return error in self.plan.targets

    def volunteer(self, p: float, only: tuple[str, ...] | None = None) -> Part | None:
        """Maybe let the client volunteer one of the planned unasked answers here."""
        waiting = [q for q in self.pending if q not in self.placed and (only is None or q in only)]
        if not waiting or not self.chance(p):
            return None
        qid = waiting[0]
        self.pending.remove(qid)
        return self.answer(qid, "volunteered")

    # ---- shared beats ---------------------------------------------------------------------------------

    def ask(self, qid: str, style: str, lead: Part | None = None) -> None:
        """An agent turn asking ``qid`` (or stating the fact for the client to confirm)."""
        bank = self.bank.questions[qid]
        if style.startswith("confirm"):
            question = self.text(self.rng.choice(bank.state), fillable=True)
        else:
            pool = bank.ask + (bank.ask_b2c if self.plan.b2c else bank.ask_b2b)
            pool += self.industry.asks.get(qid, ())
            question = self.text(self.rng.choice(pool), fillable=True)
        if lead is None and len(self.turns) > 2 and self.chance(0.55):
            lead = self.say("agent.ack_null" if self.last_style in NULL_STYLES else "agent.ack")
        self.agent(lead, question, asks=(qid,))

    def reply(self, qid: str, style: str) -> None:
        """The client's turn after being asked ``qid``, answering in ``style``."""
        parts: list[Part | None] = []
        if style in ("dodge", "refuse"):
            bank = self.bank.questions[qid]
            own = bank.dodge if style == "dodge" else bank.refuse
            pool = own + self.bank.line(f"client.{style}")
            parts.append(self.text(self.rng.choice(pool)))
        elif style == "confirm_bare":
            parts.append(self.say("client.confirm_bare"))
        else:
            group = "confirm_repeat" if style == "confirm_repeat" else style
            if style in ("direct", "two") and self.chance(0.3):
                parts.append(self.say("client.prefix"))
            answered = self.answer(qid, group) or self.answer(qid, "direct")
            parts.append(answered or self.say("client.dodge"))
        parts.append(self.volunteer(0.3))
        if len([p for p in parts if p]) < 3 and self.chance(0.12):
            parts.append(self.say("client.aside"))
        self.styles[qid] = style
        self.last_style = style
        self.client(*parts)

    def objection(self, kind: str) -> None:
        """The client objects (sometimes giving an answer away while doing so)."""
        pairs = {
            "have_supplier": ("current_supplier",),
            "expensive": ("competitor_offers", "selection_criteria", "last_purchase_amount"),
            "think": ("decision_maker", "decision_process"),
            "no_time": ("next_purchase",),
            "send_email": (),
        }
        line = self.say(f"objection.{kind}.client")
        given = self.volunteer(0.6, pairs[kind]) if pairs[kind] else None
        if given is None and kind in ("have_supplier", "expensive") and self.chance(0.5):
            qid = pairs[kind][0]
            if qid not in self.placed and qid not in [q for q, _ in self.plan.asked]:
                given = self.answer(qid, "volunteered")
        self.client(line, given)
        self.notes.append(f"objection '{kind}'")

    def pitch(self, *, lead: Part | None = None) -> None:
        """The agent presents the offer, with a price (a distractor for last_purchase_amount)."""
        key = "pitch.cheap" if self.has(ErrorId.VALUE_REDUCING_WORDS) and self.chance(0.6) else "pitch.offer"
        self.agent(lead, self.say(key, fillable=True), pitch=True)

    def pitch_reaction(self) -> None:
        parts = [self.say("client.pitch_reaction")]
        parts.append(self.volunteer(0.5, (*NEEDS, "competitor_offers")))
        self.client(*parts)

    # ---- closings -------------------------------------------------------------------------------

    def close_with_next_step(self) -> None:
        rng = self.rng
        self.next_step = True
        if self.chance(0.3):
            self.agent(self.say("closing.meeting.propose"))
            self.client(self.volunteer(1.0, ("decision_maker", "start_conditions")), self.say("closing.meeting.accept"))
            self.agent(self.say("closing.meeting.confirm"))
            self.notes.append("next step: meeting")
        else:
            self.agent(self.say("closing.callback.propose"))
            mode = rng.choices(["own", "adjust", "plain"], weights=[0.5, 0.25, 0.25])[0]
            if mode == "plain":
                self.client(self.volunteer(1.0), self.say("closing.callback.accept_plain"))
                self.agent(self.say("closing.callback.confirm_plain"))
            else:
                self.callback = rng.choice(self.bank.callbacks)
                key = "closing.callback.accept_own" if mode == "own" else "closing.callback.accept_adjust"
                self.client(self.volunteer(1.0), self.say(key, callback=self.callback))
                self.agent(self.say("closing.callback.confirm", callback=self.callback))
            self.notes.append(f"next step: callback ({mode})")
        if self.chance(0.7):
            self.client(self.say("closing.bye_client"))

    def close_without_next_step(self) -> None:
        self.next_step = False
        self.agent(self.say("closing.no_step.agent", fillable=True))
        self.client(self.volunteer(1.0, ("decision_process", "decision_maker")), self.say("closing.no_step.client"))
        if self.chance(0.6):
            self.agent(self.say("closing.bye_agent"))
        self.notes.append("no next step")

    # ---- call types ---------------------------------------------------------------------------------

    def sales_call(self) -> None:
        plan = self.plan
        if plan.call_type == CallType.COLD_CALL:
            if not plan.b2c and self.chance(0.35):
                if not self.cold_opening(gatekeeper=True):
                    return
            else:
                self.cold_opening(gatekeeper=False)
        elif plan.call_type == CallType.FOLLOW_UP:
            self.follow_up_opening()
        else:
            self.inbound_opening()
        self.body()

    def intro_key(self, base: str) -> str:
        if self.has(ErrorId.NO_INTRODUCTION):
            self.introduced = False
            return f"{base}.no_intro"
        if self.has(ErrorId.VALUE_REDUCING_WORDS) and f"{base}.intro_vrw" in self.bank.lines and self.chance(0.7):
            return f"{base}.intro_vrw"
        return f"{base}.intro"

    def cold_opening(self, *, gatekeeper: bool) -> bool:
        """Opening of a cold call; False when the call ends at the gatekeeper."""
        key = self.intro_key("open.cold")
        if gatekeeper:
            self.agent(self.say(key), self.say("open.cold.ask_person"))
            return self.gatekeeper_dialogue()
        self.agent(self.say(key), self.say("open.cold.check_person"))
        if not self.introduced and self.chance(0.5):
            self.client(self.say("client.who_are_you"))
            self.agent(self.say("open.cold.late_company"), self.say("open.cold.purpose", fillable=True))
        else:
            self.client(self.say("client.contact_confirm"))
            self.agent(self.say("open.cold.purpose", fillable=True))
        self.client(self.say("client.purpose_reply"), self.volunteer(0.4, ("planned_equipment", "next_purchase")))
        return True

    def gatekeeper_dialogue(self) -> bool:
        self.client(self.say("gatekeeper.ask_purpose"))
        blocked_ok = self.has(ErrorId.OBJECTION_NOT_HANDLED) and self.has(ErrorId.NO_NEXT_STEP)
        if self.has(ErrorId.NO_NEEDS_DISCOVERY):
            self.agent(self.say("gatekeeper.explain_pitch", fillable=True), pitch=True)
        else:
            self.agent(self.say("gatekeeper.explain", fillable=True))
        if blocked_ok and self.chance(0.6):
            self.client(self.say("gatekeeper.block"))
            self.given_in = True
            self.agent(self.say("gatekeeper.give_in"))
            self.client(self.say("gatekeeper.email"))
            self.agent(self.say("closing.bye_agent"))
            self.next_step = False
            self.ended_at_gatekeeper = True
            self.notes.append("blocked by the gatekeeper")
            return False
        if not self.has(ErrorId.NO_NEXT_STEP) and self.chance(0.35):
            self.gatekeeper_callback()
            return False
        self.client(self.say("gatekeeper.transfer"))
        self.agent(self.say("gatekeeper.wait"))
        self.client(self.say("client.transfer_hello"))
        reintro = "open.cold.reintro" if self.introduced else "open.cold.reintro_no_name"
        self.agent(self.say(reintro), self.say("open.cold.purpose", fillable=True))
        self.client(self.say("client.purpose_reply"), self.volunteer(0.4, ("planned_equipment", "next_purchase")))
        self.notes.append("gatekeeper transfer")
        return True

    def gatekeeper_callback(self) -> None:
        """The secretary says when to call back; the agent may try a question on her (dodged)."""
        self.client(self.say("gatekeeper.away"), self.volunteer(0.5, ("decision_maker", "decision_process")))
        self.agent(self.say("gatekeeper.when"))
        self.callback = self.rng.choice(self.bank.callbacks)
        self.client(self.say("gatekeeper.callback", callback=self.callback))
        if self.chance(0.6):
            question = self.text(self.rng.choice(self.bank.questions["current_supplier"].ask), fillable=True)
            self.agent(self.say("agent.ack"), question, asks=("current_supplier",))
            self.client(self.say("gatekeeper.dodge"))
            self.styles["current_supplier"] = "dodge"
        self.agent(self.say("gatekeeper.thanks", callback=self.callback))
        self.client(self.say("closing.bye_client"))
        self.next_step = True
        self.ended_at_gatekeeper = True
        self.notes.append("gatekeeper gives a callback time")

    def follow_up_opening(self) -> None:
        key = self.intro_key("open.follow")
        self.agent(self.say(key))
        self.client(self.say("client.follow_recall"))
        self.agent(self.say("open.follow.purpose", fillable=True))
        self.client(self.say("client.follow_impression"), self.volunteer(0.5, ("competitor_offers", "decision_maker")))

    def inbound_opening(self) -> None:
        key = self.intro_key("open.inbound")
        self.agent(self.say(key))
        need = self.answer("planned_equipment", "volunteered") if "planned_equipment" in self.pending else None
        if need is not None:
            self.pending.remove("planned_equipment")
            self.client(self.say("client.inbound_hello"), need, self.volunteer(0.3, ("next_purchase",)))
        else:
            self.client(self.say("client.inbound_hello"), self.say("client.inbound_vague"))

    def body(self) -> None:
        """Questions, the objection and the pitch, then the closing."""
        plan = self.plan
        queue = list(plan.asked)
        # "Too expensive" and "we'll think" only make sense once there is an offer on the table.
        deferred = plan.objection in ("expensive", "think") or plan.objection_at >= len(queue)
        if deferred and plan.objection not in (None, "expensive", "think"):
            plan.objection = self.rng.choice(["expensive", "think"])  # after an offer, these are the natural ones
        if self.chance(0.2):
            self.agent(self.say("smalltalk.agent"))
            self.client(self.say("smalltalk.client"))
            self.notes.append("small talk")
        if self.has(ErrorId.NO_NEEDS_DISCOVERY):
            self.pitch()
            if plan.objection and (deferred or not queue):
                if self.objection_beat(plan.objection):
                    return
                plan.objection = None
            else:
                self.pitch_reaction()
        step = 0
        while queue:
            qid, style = queue.pop(0)
            if qid in self.placed:
                continue
            self.ask(qid, style)
            if plan.objection and not deferred and step == plan.objection_at:
                kind, plan.objection = plan.objection, None
                if self.objection_beat(kind, qid=qid, style=style):
                    return
            elif (
                queue and self.chance(0.1) and style in ("direct", "indirect") and queue[0][1] in ("direct", "indirect")
            ):
                self.double_question(qid, style, queue.pop(0))
            else:
                self.reply(qid, style)
            step += 1
        pitched = any(t.pitch for t in self.turns)
        if plan.objection:
            if pitched and plan.objection != "expensive":
                self.agent(self.say("agent.summary", fillable=True))
            else:
                self.pitch(lead=self.say("agent.ack"))
            if self.objection_beat(plan.objection):
                return
        elif not pitched and self.chance(0.6):
            self.pitch(lead=self.say("agent.ack"))
            self.pitch_reaction()
        self.flush_volunteered()
        if self.has(ErrorId.NO_NEXT_STEP):
            self.close_without_next_step()
        else:
            self.close_with_next_step()

    def double_question(self, qid: str, style: str, second: tuple[str, str]) -> None:
        """The agent asks two questions in one turn; the client answers both."""
        last = self.turns.pop()
        q2, style2 = second
        if q2 in self.placed:
            self.turns.append(last)
            return self.reply(qid, style)
        bank = self.bank.questions[q2]
        pool = bank.ask + (bank.ask_b2c if self.plan.b2c else bank.ask_b2b)
        last.parts.append(self.text("и ещё: " + self.rng.choice(pool)))
        self.turns.append(DraftTurn(Speaker.AGENT, last.parts, (qid, q2)))
        first_answer = self.answer(qid, style) or self.answer(qid, "direct")
        self.client(first_answer, self.answer(q2, style2) or self.answer(q2, "direct"))
        self.styles[qid], self.styles[q2] = style, style2
        return None

    def objection_beat(self, kind: str, qid: str | None = None, style: str = "direct") -> bool:
        """Client objection, then the agent handles it (re-asking) or gives in; True when the call ended."""
        self.objection(kind)
        if self.has(ErrorId.OBJECTION_NOT_HANDLED):
            self.given_in = True
            self.agent(self.say(f"objection.{kind}.give_in", fillable=True))
            self.client(self.volunteer(0.5), self.say("closing.no_step.client"))
            if self.chance(0.6):
                self.agent(self.say("closing.bye_agent"))
            self.next_step = False
            self.notes.append("objection not handled")
            return True
        handle = self.say(f"objection.{kind}.handle", fillable=True)
        if qid is not None and qid not in self.placed:
            self.ask(qid, style, lead=handle)
            self.reply(qid, style)
        else:
            self.agent(handle, self.say("objection.bridge"))
            self.client(self.say("objection.soften"), self.volunteer(0.5))
        return False

    def flush_volunteered(self) -> None:
        """Volunteered answers still unsaid come out in one client remark before the closing."""
        waiting = [q for q in self.pending if q not in self.placed]
        if not waiting:
            return
        self.agent(self.say("agent.anything_else", fillable=True))
        parts = [self.say("client.by_the_way")]
        for qid in waiting[:2]:
            parts.append(self.answer(qid, "volunteered"))
            self.pending.remove(qid)
        self.client(*parts)

    def service_call(self) -> None:
        """Inbound service request: a problem, clarification, a booked visit (or a vague promise)."""
        kind = self.industry.service
        self.agent(self.say(self.intro_key("open.service")))
        self.client(self.say("service.client_intro"), self.say("service.problem"))
        self.agent(self.say("service.clarify", fillable=True))
        self.client(self.say("service.details"), self.volunteer(0.35, ("frequent_items", "last_purchase_amount")))
        self.agent(self.say(f"service.advice.{kind}", fillable=True))
        self.client(self.say(f"service.urgency.{kind}"))
        if self.has(ErrorId.NO_NEXT_STEP):
            self.next_step = False
            self.agent(self.say("service.vague", fillable=True))
            self.client(self.say("service.vague_reply"))
            self.agent(self.say("service.vague_again"))
        else:
            self.next_step = True
            self.agent(self.say(f"service.book.{kind}", fillable=True))
            if self.chance(0.4):
                self.callback = self.rng.choice(self.bank.callbacks)
                self.client(self.say("service.ask_callback", callback=self.callback))
                self.agent(self.say("service.confirm_callback", callback=self.callback))
            else:
                self.client(self.say("service.book_reply"))
                self.agent(self.say(f"service.free_or_not.{kind}", fillable=True))
        self.client(self.say("closing.bye_client"))

    def complaint_call(self) -> None:
        """An unhappy client; the agent takes the claim and commits to a date, or does not."""
        self.agent(self.say(self.intro_key("open.service")))
        self.client(self.say("complaint.client_open"), self.say("complaint.problem"))
        self.agent(self.say("complaint.apologise", fillable=True))
        self.client(self.say("complaint.details"), self.volunteer(0.5, ("frequent_items",)))
        self.agent(self.say("complaint.clarify", fillable=True))
        self.client(self.say("complaint.pressure"))
        if self.has(ErrorId.NO_NEXT_STEP):
            self.next_step = False
            self.agent(self.say("complaint.vague", fillable=True))
            self.callback = self.rng.choice(self.bank.callbacks)
            self.client(self.say("complaint.demand_callback", callback=self.callback))
            self.agent(self.say("complaint.pass_on"))
        else:
            self.next_step = True
            key = "complaint.resolve_vrw" if self.has(ErrorId.VALUE_REDUCING_WORDS) else "complaint.resolve"
            self.agent(self.say(key, fillable=True))
            if self.chance(0.5):
                self.callback = self.rng.choice(self.bank.callbacks)
                self.client(self.say("complaint.ask_callback", callback=self.callback))
                self.agent(self.say("complaint.confirm_callback", callback=self.callback))
            else:
                self.client(self.say("complaint.threat"))
                self.agent(self.say("complaint.reassure"))
        self.client(self.say("complaint.bye"))

    def where_to_buy_call(self) -> None:
        """A caller asks where to buy; the agent names partner dealers (not the client's suppliers)."""
        self.agent(self.say(self.intro_key("open.inbound")))
        need = self.answer("planned_equipment", "volunteered") if self.chance(0.35) else None
        self.client(self.say("where.ask"), need)
        if need is None:
            self.agent(self.say("where.what_needed", fillable=True), asks=("planned_equipment",))
            self.client(self.answer("planned_equipment", "direct"))
        self.agent(self.say("where.partners", fillable=True))
        self.client(self.say("where.write_down"))
        self.agent(self.say("where.details", fillable=True))
        time_part = self.answer("next_purchase", "volunteered") if self.chance(0.4) else None
        self.client(self.say("where.thanks"), time_part)
        self.agent(self.say("where.bye"))
        if self.chance(0.6):
            self.client(self.say("closing.bye_client"))

    def nps_call(self) -> None:
        """A satisfaction survey: a 0–10 score (maybe corrected), feedback, maybe a new lead."""
        rng, bank = self.rng, self.bank
        key = self.intro_key("nps.open")
        self.agent(self.say(key))
        if self.chance(0.08):
            self.client(self.say("nps.decline"))
            self.agent(self.say("nps.bye"))
            self.notes.append("client declined the survey")
            return
        self.client(self.say("nps.agree"))
        self.agent(self.say("nps.ask", fillable=True))
        score = rng.choices(range(11), weights=[1, 1, 1, 1, 2, 3, 4, 6, 8, 8, 7])[0]
        style = rng.choices(["plain", "reasoned", "corrected", "digits", "refuse"], [0.3, 0.3, 0.15, 0.15, 0.1])[0]
        said = rng.choice(bank.nps_scores[score])
        if style == "refuse":
            self.client(self.say("nps.refuse_score"))
        elif style == "corrected":
            wrong = rng.choice(bank.nps_scores[min(10, score + 1) if score < 10 else score - 1])
            self.client(self.say("nps.corrected", score=said, wrong=wrong))
            self.nps = score
        else:
            said = str(score) if style == "digits" else said
            self.client(self.say(f"nps.{'reasoned' if style == 'reasoned' else 'plain'}", score=said))
            self.nps = score
        self.notes.append(f"nps {style}")
        self.agent(self.say("nps.follow", fillable=True))
        hypo = rng.choice(bank.nps_scores[min(10, score + 2)]) if score < 9 else ""
        self.client(self.say("nps.feedback_hypo" if hypo else "nps.feedback", hypo=hypo))
        if self.chance(0.45):
            self.agent(self.say("nps.next_visit", fillable=True), asks=("next_purchase",))
            self.client(self.answer("next_purchase", "direct"), self.volunteer(0.5))
        else:
            self.agent(self.say("nps.thanks", fillable=True))
            self.client(self.say("nps.fine"), self.volunteer(0.5, ("planned_equipment", "next_purchase")))
        if self.chance(0.3):
            self.agent(self.say("nps.hand_over"))
            self.callback = rng.choice(bank.callbacks)
            self.client(self.say("nps.callback", callback=self.callback))
        self.agent(self.say("nps.bye"))
        if self.chance(0.6):
            self.client(self.say("closing.bye_client"))

    def spam_call(self) -> None:
        """An inbound vendor pitch: the CALLER (labelled CLIENT) asks our agent questions; no answers."""
        rng = self.rng
        offer = rng.choice(list(self.bank.line("spam.kinds")))
        extra = {f"spam_{k}": rng.choice(self.bank.line(f"spam.{offer}.{k}")) for k in ("co", "offer", "price")}
        extra["spammer"] = self._person().first
        self.agent(self.say(self.intro_key("open.inbound")))
        self.client(self.say("spam.hello", **extra))
        self.agent(self.say("spam.what_about"))
        self.client(self.say("spam.pitch", **extra), self.say(f"spam.{offer}.question", **extra))
        self.agent(self.say("spam.deflect"))
        self.client(self.say("spam.push", **extra))
        self.agent(self.say("spam.decline"))
        if self.chance(0.6):
            self.client(self.say("spam.last_try", **extra))
            self.agent(self.say("spam.bye"))
        self.notes.append(f"spam: {offer}")

    # ---- post-processing: interruptions and fillers ------------------------------------------------

    def interrupt(self, count: int) -> None:
        """The agent cuts the client off: the client's turn ends with ' —' and the agent takes over."""
        candidates = [
            i
            for i in range(1, len(self.turns) - 1)
            if self.turns[i].speaker == Speaker.CLIENT and self.turns[i + 1].speaker == Speaker.AGENT
        ]
        # Cut the client off while he talks about his business, not while he says goodbye or transfers.
        engaged = [i for i in candidates if self.turns[i - 1].asks or self.turns[i - 1].pitch]
        candidates = engaged if len(engaged) >= count else candidates
        for i in sorted(self.rng.sample(candidates, min(count, len(candidates)))):
            self.turns[i].parts.append(self.say("interrupt.client_tail"))
            self.turns[i].parts[-1].text += " —"
            self.turns[i + 1].parts.insert(0, self.say("interrupt.takeover"))

    def client_cuts_agent(self) -> None:
        """The client cuts the agent off (realistic, and not the agent's error)."""
        candidates = [
            i
            for i in range(1, len(self.turns) - 2)
            if self.turns[i].pitch and self.turns[i + 1].speaker == Speaker.CLIENT
        ]
        if candidates:
            i = self.rng.choice(candidates)
            self.turns[i].parts.append(self.say("interrupt.agent_tail"))
            self.turns[i].parts[-1].text += " —"
            self.turns[i + 1].parts.insert(0, self.say("interrupt.client_cut_in"))
            self.notes.append("the client cuts the agent off once (not an agent error)")

    def add_fillers(self) -> None:
        """Sprinkle filler words into at least two agent turns."""
        slots = [
            (i, j)
            for i, turn in enumerate(self.turns)
            if turn.speaker == Speaker.AGENT and i > 0
            for j, part in enumerate(turn.parts)
            if part.fillable and part.text[:1].islower()
        ]
        chosen = self.rng.sample(slots, min(len(slots), max(2, len(slots) // 2)))
        for i, j in chosen:
            part = self.turns[i].parts[j]
            filler = self.rng.choice(self.bank.line("fillers.prefix"))
            if self.chance(0.35) and " " in part.text:
                head, tail = part.text.split(" ", 1)
                part.text = f"{head.rstrip(',')}, {self.rng.choice(self.bank.line('fillers.inner'))}, {tail}"
            else:
                part.text = f"{filler} {part.text}"

    # ---- assembly and labels ----------------------------------------------------------------------

    def write(self) -> LabelledCall:
        """Plan, write and label the call."""
        plan = self.plan = self.choose_plan()
        self.cast(plan)
        self.plan_questions(plan)
        self.pending = list(plan.volunteered)
        writers = {
            CallType.INBOUND_SERVICE: self.service_call,
            CallType.COMPLAINT: self.complaint_call,
            CallType.WHERE_TO_BUY: self.where_to_buy_call,
            CallType.NPS_SURVEY: self.nps_call,
            CallType.SPAM: self.spam_call,
        }
        writers.get(plan.call_type, self.sales_call)()
        if self.has(ErrorId.INTERRUPTION):
            self.interrupt(self.rng.choice([1, 1, 2]))
        elif plan.call_type in SALES and self.chance(0.08):
            self.client_cuts_agent()
        if self.has(ErrorId.FILLER_WORDS):
            self.add_fillers()
        return self.assemble(plan)

    def assemble(self, plan: Plan) -> LabelledCall:
        turns: list[Turn] = []
        answers: dict[str, GoldAnswer | None] = dict.fromkeys(QUESTION_IDS)
        volunteered: list[str] = []
        for index, draft in enumerate(self.turns):
            text, spans = "", []
            for part in draft.parts:
                if not part.text:
                    continue
                offset = len(text) + (1 if text else 0)
                text = f"{text} {part.text}" if text else part.text
                spans += [(q, offset + a, offset + b, v) for q, a, b, v in part.spans]
            text = capitalise(text)
            turns.append(Turn(speaker=draft.speaker, text=text))
            spans = self.as_annotated(text, spans)
            for qid, a, b, value in spans:
                if plan.call_type == CallType.SPAM:
                    continue
                answers[qid] = GoldAnswer(turn=index, text=text[a:b], value=value)
                previous = self.turns[index - 1] if index else None
                if previous is None or previous.speaker != Speaker.AGENT or qid not in previous.asks:
                    volunteered.append(qid)
        errors = self.label(plan, turns)
        return LabelledCall(
            call_id=self.call_id,
            industry=self.industry.label,
            call_type=plan.call_type,
            turns=turns,
            answers=answers,
            errors=errors,
            nps=self.nps,
            callback=self.callback,
            notes=self.describe(plan, volunteered, answers),
        )

    def as_annotated(
        self, text: str, spans: list[tuple[str, int, int, AnswerValue]]
    ) -> list[tuple[str, int, int, AnswerValue]]:
        """Answer spans the way annotators mark them: often the client's whole statement, not its core.

        Real labelled calls quote the answer's sentence more often than the bare phrase (median
        6 words against the templates' 4); a span alone in its sentence is widened to that
        sentence with probability ``STATEMENT_SPAN_RATE`` (from its own generator, so the rest of
        the call does not change).
        """
        rng = random.Random(f"{self.call_id}:spans")
        out = []
        for qid, a, b, value in spans:
            sa, sb = next(((x, y) for x, y in _sentence_spans(text) if x <= a and b <= y), (a, b))
            alone = not any(a2 < sb and b2 > sa for q2, a2, b2, _ in spans if q2 != qid)
            widen = alone and (sa, sb) != (a, b) and rng.random() < STATEMENT_SPAN_RATE
            out.append((qid, sa, sb, value) if widen else (qid, a, b, value))
        return out

    def label(self, plan: Plan, turns: list[Turn]) -> list[ErrorId]:
        """Error labels from what the transcript shows (and the plan, for what text cannot show)."""
        agent_text = " ".join(t.text for t in turns if t.speaker == Speaker.AGENT)
        asked = {q for d in self.turns if d.speaker == Speaker.AGENT for q in d.asks}
        first_needs = next((i for i, d in enumerate(self.turns) if set(d.asks) & set(NEEDS)), None)
        first_pitch = next((i for i, d in enumerate(self.turns) if d.pitch), None)
        sales = plan.call_type in SALES
        found = {
            ErrorId.NO_INTRODUCTION: not self.introduced,
            ErrorId.FILLER_WORDS: len(FILLER_RE.findall(agent_text)) >= 2,
            ErrorId.INCOMPLETE_QUALIFICATION: sales
            and not self.ended_at_gatekeeper
            and len(asked & set(REQUIRED)) * 2 < len(REQUIRED),
            ErrorId.OBJECTION_NOT_HANDLED: self.given_in,
            ErrorId.NO_NEXT_STEP: self.next_step is False,
            ErrorId.INTERRUPTION: any(
                a.speaker == Speaker.CLIENT and a.text.endswith(" —") and b.speaker == Speaker.AGENT
                for a, b in itertools.pairwise(turns)
            ),
            ErrorId.VALUE_REDUCING_WORDS: bool(VALUE_REDUCING_RE.search(agent_text)),
            ErrorId.NO_NEEDS_DISCOVERY: sales
            and first_pitch is not None
            and (first_needs is None or first_needs > first_pitch),
        }
        return [error for error in ErrorId if found[error]]

    def describe(self, plan: Plan, volunteered: list[str], answers: dict[str, GoldAnswer | None]) -> str:
        given = [q for q, a in answers.items() if a is not None]
        styles = ", ".join(f"{q}={s}" for q, s in self.styles.items())
        parts = [
            f"Synthetic {plan.call_type.value} ({self.industry.label}{', B2C' if plan.b2c else ''})",
            f"{plan.quality} manager",
            f"answered {len(given)}/10",
        ]
        if styles:
            parts.append(f"asked: {styles}")
        parts.append(f"volunteered=[{','.join(volunteered)}]")
        parts.extend(self.notes)
        return "; ".join(parts) + "."


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    """Char spans of a turn's sentences (ending at . ! ? …), without the closing mark."""
    out, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        out.append((start, m.start()))
        start = m.end()
    if start < len(text):
        out.append((start, len(text)))
    return [(a + len(text[a:b]) - len(text[a:b].lstrip()), b) for a, b in out if text[a:b].strip()]


def volunteered_questions(call: LabelledCall) -> list[str]:
    """Question ids whose gold answer the client gave unprompted (recorded by the generator in notes)."""
    match = re.search(r"volunteered=\[([a-z_,]*)\]", call.notes)
    return [q for q in match[1].split(",") if q] if match else []


def is_synthetic(call_id: str) -> bool:
    """Generated calls carry ids ``syn-…``; every other call is a labelled (real) one."""
    return call_id.startswith(SYNTHETIC_PREFIX)


def generate_call(index: int, seed: int, *, asr_share: float = 1 / 3, bank: Bank | None = None) -> LabelledCall:
    """One synthetic call; the same (index, seed) always gives the same call."""
    rng = random.Random(f"callqa-synthetic:{seed}:{index}")
    writer = CallWriter(bank or load_bank(), rng, f"{SYNTHETIC_PREFIX}{index:06d}")
    call = writer.write()
    if rng.random() < asr_share:
        call = render_asr(call)
        call = call.model_copy(update={"notes": call.notes[:-1] + "; rendered as raw ASR."})
    return call


def generate_calls(n: int, seed: int, *, asr_share: float = 1 / 3, start_id: int = 0) -> list[LabelledCall]:
    """Generate ``n`` labelled calls (ids ``syn-{start_id:06d}`` on), deterministic for a seed.

    About ``asr_share`` of them are rendered as raw ASR output. Call ``syn-k`` depends only on ``seed`` and
    ``k``, so batches generated with consecutive ``start_id`` ranges join into one consistent set.
    """
    if n < 0 or start_id < 0 or not 0.0 <= asr_share <= 1.0:
        raise BadInput(f"need n >= 0, start_id >= 0 and 0 <= asr_share <= 1, got {n}, {start_id}, {asr_share}")
    bank = load_bank()
    began = time.perf_counter()
    calls = [generate_call(start_id + i, seed, asr_share=asr_share, bank=bank) for i in range(n)]
    log.info("generated synthetic calls", extra={"n": n, "seed": seed, "seconds": time.perf_counter() - began})
    return calls
