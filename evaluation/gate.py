"""The evaluation gate: a new version becomes ``champion`` only if it is better on a held-out split.

Both the candidate and the current champion are scored on the same held-out calls, and the
gate asks whether the candidate is better *with confidence*, not merely by a point: on 20-40
calls one answer more or less moves a question's F1 by several points. A paired bootstrap
resamples the calls with replacement ``resamples`` times (a seeded generator, so a decision is
reproducible), recomputes the task metric of both models on each resample (answers: micro
``answer_f1``; errors: macro-F1 over the error ids; call type: accuracy) and looks at the
difference candidate − champion:

- promote when the candidate is better in at least ``confidence`` (95%) of the resamples,
  ``P(diff > 0) ≥ confidence``; a tie counts as not better, so a copy of the champion never passes;
- but refuse when some question (answers) or error id (errors) is worse with the same
  confidence: its F1 falls by more than ``max_drop`` (2 points) in at least ``confidence`` of the
  resamples. A single-answer wobble stays below that; a drop seen across many calls does not.

With no champion yet a baseline stands in as the champion, and the first version must beat it
the same way: answers, the zero-shot extractor; errors and call type, the best constant answer on
the held-out calls themselves (the majority call type; per error id, flag it on every call when most
calls have it, else never) — a bar a classifier that learned nothing cannot pass.
The decision, the statistics, both scores and the report go into the
candidate's MLflow run.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from callqa import registry
from callqa.models import ZERO_SHOT, load_answer_extractor, load_classifier
from callqa.schemas import LabelledCall, Questionnaire
from callqa.settings import Settings, get_settings
from evaluation.harness import Evaluation, EvaluationSummary, evaluate_answers

MAX_DROP = 0.02  # a per-item F1 drop (2 points) the gate refuses when it is this sure of it
CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0
CALL_TYPE = "call_type"  # the one "item" of the call-type task
_TIE = 1e-12  # metric differences below this are float noise: a tie, not a win


class GateRule(BaseModel):
    """How sure the gate must be before it moves the champion (see the module docstring)."""

    confidence: float = Field(CONFIDENCE, gt=0.5, lt=1)
    max_drop: float = Field(MAX_DROP, ge=0)
    resamples: int = Field(RESAMPLES, ge=1)
    seed: int = SEED


class BootstrapStats(BaseModel):
    """The paired bootstrap behind a decision: candidate − champion on resampled held-out calls."""

    rule: GateRule
    calls: int
    observed_diff: float  # on the held-out calls as they are
    mean_diff: float
    interval: tuple[float, float]  # central percentile interval at the rule's confidence (95%: 2.5%..97.5%)
    p_better: float  # share of resamples where the candidate scores higher
    per_item_p_worse: dict[str, float]  # share of resamples where the item's F1 falls by more than max_drop
    worst_item: str | None = None
    worst_item_p_worse: float = 0.0


class GateDecision(BaseModel):
    task: str
    candidate: str
    champion: str
    promoted: bool
    reason: str
    candidate_score: float
    champion_score: float
    metric: str
    per_item_drops: dict[str, float]  # question or error id → how much it fell (positive: worse)
    held_out_calls: int
    zero_shot_score: float | None = None  # answers: the untrained baseline on the same calls
    bootstrap: BootstrapStats | None = None  # None when there was no champion to compare with


@dataclass(frozen=True, eq=False)
class CallCounts:
    """Per held-out call × item (question, error id, or the call type): gold, predicted, matched.

    Answers: 0/1 per call × question, as ``AnswerScorer`` counts them. Errors: the gold and
    predicted flags per call × error id. Call type: ``gold`` and ``pred`` are 1 where the call was
    scored, ``match`` where the type was right. Arrays are (calls, items), integer counts.
    """

    call_ids: tuple[str, ...]
    items: tuple[str, ...]
    gold: np.ndarray
    pred: np.ndarray
    match: np.ndarray

    @classmethod
    def build(
        cls, call_ids: Iterable[str], items: Iterable[str], cells: Iterable[tuple[str, str, bool, bool, bool]]
    ) -> CallCounts:
        """From (call id, item, gold, predicted, matched) cells; a repeated call id adds up into one row."""
        rows = {c: i for i, c in enumerate(dict.fromkeys(call_ids))}
        cols = {q: j for j, q in enumerate(dict.fromkeys(items))}
        counts = np.zeros((3, len(rows), len(cols)), dtype=np.int64)
        for call_id, item, *flags in cells:
            counts[:, rows[call_id], cols[item]] += np.asarray(flags, dtype=np.int64)
        return cls(tuple(rows), tuple(cols), counts[0], counts[1], counts[2])

    def score(self, task: str) -> tuple[float, np.ndarray]:
        """The task's metric and its per-item F1 over all these calls (see :func:`task_scores`)."""
        total, items = task_scores(task, self.gold.sum(0), self.pred.sum(0), self.match.sum(0))
        return float(total), items

    def aligned_to(self, other: CallCounts) -> CallCounts:
        """These counts with rows and columns in ``other``'s order (the pairing of the bootstrap)."""
        if set(self.call_ids) != set(other.call_ids) or set(self.items) != set(other.items):
            raise ValueError("the candidate and the champion were not scored on the same calls and items")
        rows = [self.call_ids.index(c) for c in other.call_ids]
        cols = [self.items.index(q) for q in other.items]
        pick = np.ix_(rows, cols)
        return CallCounts(other.call_ids, other.items, self.gold[pick], self.pred[pick], self.match[pick])


@dataclass
class Verdict:
    """What :func:`decide` says: promote or not, why, and the numbers behind it."""

    promoted: bool
    reason: str
    per_item_drops: dict[str, float]
    bootstrap: BootstrapStats | None = None


def _evaluate(task: str, spec: str, calls, questionnaire, settings) -> Evaluation:
    if task == "answers":
        return evaluate_answers(
            calls, questionnaire, load_answer_extractor(spec, questionnaire, settings), show_progress=False
        )
    clf = load_classifier(spec, task, settings)
    return evaluate_answers(
        calls,
        questionnaire,
        load_answer_extractor(ZERO_SHOT, questionnaire, settings),
        errors=clf if task == "errors" else None,
        call_type=clf if task == "calltype" else None,
        show_progress=False,
    )


def score_of(task: str, summary: EvaluationSummary) -> tuple[str, float, dict[str, float]]:
    """The gate's metric for a task, its value, and the per-item scores it must not drop on."""
    if task == "answers":
        return "answer_f1", summary.answer_f1, {q: m.f1 for q, m in summary.per_question.items()}
    if task == "errors":
        per = {e: m.f1 for e, m in (summary.per_error or {}).items()}
        return "error_macro_f1", summary.error_macro_f1 or 0.0, per
    return "call_type_accuracy", summary.call_type_accuracy or 0.0, {}


def call_counts(task: str, evaluation: Evaluation) -> CallCounts:
    """The per-call counts of ``task`` that the gate's bootstrap resamples."""
    if task == "answers":
        return CallCounts.build(
            (o.call_id for o in evaluation.outcomes),
            evaluation.summary.per_question,
            ((o.call_id, o.question_id, o.gold is not None, o.pred is not None, o.match) for o in evaluation.outcomes),
        )
    calls = [c.call_id for c in evaluation.classified]
    if task == "errors":
        ids = list(evaluation.summary.per_error or {})
        cells = (
            (c.call_id, e, e in c.gold_errors, e in c.pred_errors, e in c.gold_errors and e in c.pred_errors)
            for c in evaluation.classified
            if c.pred_errors is not None
            for e in ids
        )
        return CallCounts.build(calls, ids, cells)
    cells = (
        (c.call_id, CALL_TYPE, True, True, c.type_right) for c in evaluation.classified if c.type_right is not None
    )
    return CallCounts.build(calls, [CALL_TYPE], cells)


def constant_baseline(task: str, evaluation: Evaluation, held_out: Sequence[LabelledCall]) -> tuple[str, CallCounts]:
    """The best constant classifier on ``held_out`` (its own labels: a conservative bar) and its counts,
    aligned with the candidate's ``evaluation`` (errors or calltype)."""
    scored = {c.call_id for c in evaluation.classified}
    calls = [c for c in held_out if c.call_id in scored]
    if task == "calltype":
        kinds = [str(c.call_type) for c in calls if c.call_type is not None]
        majority = max(sorted(set(kinds)), key=kinds.count) if kinds else ""
        cells = ((c.call_id, CALL_TYPE, True, True, str(c.call_type) == majority) for c in calls if c.call_type)
        return f"always {majority}", CallCounts.build([c.call_id for c in calls], [CALL_TYPE], cells)
    ids = list(evaluation.summary.per_error or {})
    gold = {c.call_id: frozenset(str(e) for e in c.errors) for c in calls}
    flagged = {e for e in ids if 2 * sum(e in g for g in gold.values()) > len(gold)}
    cells = ((cid, e, e in g, e in flagged, e in g and e in flagged) for cid, g in gold.items() for e in ids)
    label = "flags " + (", ".join(sorted(flagged)) + " on every call" if flagged else "nothing")
    return label, CallCounts.build(list(gold), ids, cells)


def _f1(gold: np.ndarray, pred: np.ndarray, match: np.ndarray, empty: float) -> np.ndarray:
    """F1 from counts, as ``evaluation.metrics`` defines it: 2·matched / (gold + predicted)."""
    total = gold + pred
    return np.where(total > 0, 2 * match / np.maximum(total, 1), empty)


def task_scores(task: str, gold: np.ndarray, pred: np.ndarray, match: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The task's metric and the per-item F1 from summed counts (items on the last axis)."""
    if task == "calltype":
        n = gold.sum(-1)
        return np.where(n > 0, match.sum(-1) / np.maximum(n, 1), 0.0), gold[..., :0].astype(float)
    if task == "errors":  # an error id never gold and never flagged is a perfect 1.0 (as ClassificationScorer)
        items = _f1(gold, pred, match, empty=1.0)
        return (items.mean(-1) if items.shape[-1] else np.zeros(items.shape[:-1])), items
    items = _f1(gold, pred, match, empty=0.0)
    return _f1(gold.sum(-1), pred.sum(-1), match.sum(-1), empty=0.0), items


def bootstrap(task: str, candidate: CallCounts, champion: CallCounts, rule: GateRule) -> BootstrapStats:
    """Resample the held-out calls with replacement; both models on the same resamples (paired)."""
    champion = champion.aligned_to(candidate)
    n = len(candidate.call_ids)
    rng = np.random.default_rng(rule.seed)
    drawn = rng.integers(0, n, size=(rule.resamples, n))  # call indices, drawn with replacement
    # how often each call is drawn in each resample, so a resample's counts are one matrix product
    weights = np.bincount((drawn + n * np.arange(rule.resamples)[:, None]).ravel(), minlength=rule.resamples * n)
    weights = weights.reshape(rule.resamples, n)
    ones = np.ones((1, n), dtype=np.int64)  # the held-out calls as they are

    def scores(c: CallCounts, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return task_scores(task, w @ c.gold, w @ c.pred, w @ c.match)

    (cand, cand_items), (champ, champ_items) = scores(candidate, weights), scores(champion, weights)
    diff, item_diff = cand - champ, cand_items - champ_items
    (cand_all, cand_all_items), (champ_all, champ_all_items) = scores(candidate, ones), scores(champion, ones)
    observed_items = (cand_all_items - champ_all_items)[0]
    items = () if task == "calltype" else candidate.items  # call type has no per-item rule
    p_worse = {q: float(np.mean(item_diff[:, j] < -rule.max_drop)) for j, q in enumerate(items)}
    # the least safe item: most often worse by more than max_drop; on a tie, the larger observed drop
    worst = max(range(len(items)), key=lambda j: (p_worse[items[j]], -observed_items[j]), default=None)
    tail = (1 - rule.confidence) / 2
    low, high = np.quantile(diff, [tail, 1 - tail])
    return BootstrapStats(
        rule=rule,
        calls=n,
        observed_diff=float((cand_all - champ_all)[0]),
        mean_diff=float(diff.mean()),
        interval=(float(low), float(high)),
        p_better=float(np.mean(diff > _TIE)),
        per_item_p_worse=p_worse,
        worst_item=None if worst is None else items[worst],
        worst_item_p_worse=0.0 if worst is None else p_worse[items[worst]],
    )


def decide(
    task: str,
    candidate: EvaluationSummary,
    champion: EvaluationSummary | None,
    candidate_calls: CallCounts | None = None,
    champion_calls: CallCounts | None = None,
    rule: GateRule | None = None,
) -> Verdict:
    """Promote or not, and why (pure: the rule itself, testable without a registry).

    ``candidate_calls`` / ``champion_calls`` are the per-call counts of both models on the same
    held-out calls (:func:`call_counts`); they are needed whenever there is a champion.
    """
    rule = rule or GateRule()
    metric, cand, cand_items = score_of(task, candidate)
    if champion is None and champion_calls is None:
        return Verdict(True, f"no champion yet; {metric} {cand:.3f}", {})
    if champion is None:  # a constant baseline, known only by its counts
        assert champion_calls is not None
        champ, per_item = champion_calls.score(task)
        champ_items = {} if task == "calltype" else dict(zip(champion_calls.items, per_item.tolist(), strict=True))
    else:
        _, champ, champ_items = score_of(task, champion)
    drops = {k: round(champ_items[k] - v, 4) for k, v in cand_items.items() if k in champ_items}
    if candidate_calls is None or champion_calls is None:
        raise ValueError("the gate compares per-call scores: pass candidate_calls and champion_calls")
    for name, summary_score, counts in (("candidate", cand, candidate_calls), ("champion", champ, champion_calls)):
        if name == "champion" and champion is None:
            continue
        total = counts.score(task)[0]
        if abs(total - summary_score) > 1e-6:
            raise ValueError(f"the {name}'s per-call counts give {metric} {total:.4f}, its summary {summary_score:.4f}")
    if not candidate_calls.call_ids:
        return Verdict(False, "no held-out calls to compare the models on", drops)
    stats = bootstrap(task, candidate_calls, champion_calls, rule)
    sure = f"{100 * rule.confidence:g}%"
    better = f"better in {100 * stats.p_better:.1f}% of {rule.resamples} resamples of {stats.calls} calls"
    if stats.p_better < rule.confidence:
        return Verdict(
            False,
            f"{metric} {cand:.3f} vs the champion's {champ:.3f} is not better with confidence: {better} (needs {sure})",
            drops,
            stats,
        )
    # the per-item rule protects what a champion's users rely on; a constant baseline serves nobody per item
    if champion is not None and stats.worst_item is not None and stats.worst_item_p_worse >= rule.confidence:
        item = stats.worst_item
        return Verdict(
            False,
            f"{metric} {cand:.3f} > {champ:.3f} ({better}), but {item} is worse: it drops "
            f"{100 * drops.get(item, 0.0):.1f} points, and more than {100 * rule.max_drop:g} in "
            f"{100 * stats.worst_item_p_worse:.1f}% of resamples",
            drops,
            stats,
        )
    safe = f"; no item drops more than {100 * rule.max_drop:g} points with {sure} confidence"
    if task == "calltype" or champion is None:
        safe = ""
    return Verdict(True, f"{metric} {cand:.3f} > {champ:.3f}, {better}{safe}", drops, stats)


def run_gate(
    task: str,
    version: str,
    held_out: Sequence[LabelledCall],
    questionnaire: Questionnaire,
    settings: Settings | None = None,
    max_drop: float = MAX_DROP,
    report_dir: Path | None = None,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> GateDecision:
    """Score the candidate version and the champion on ``held_out``; move the alias if the rule says so."""
    from mlflow import MlflowClient

    settings = settings or get_settings()
    name = registry.model_name(task)
    candidate_uri = f"models:/{name}/{version}"
    candidate_version = registry.resolve(candidate_uri, settings)
    current = registry.champion(task, settings)
    cand_eval = _evaluate(task, candidate_uri, held_out, questionnaire, settings)
    if current is not None and str(current.version) == str(version):
        champ_eval, champ_label = cand_eval, f"{name}/{current.version}"
    elif current is not None:
        champ_eval = _evaluate(task, f"models:/{name}/{current.version}", held_out, questionnaire, settings)
        champ_label = f"{name}/{current.version}"
    elif task == "answers":
        champ_eval = _evaluate(task, ZERO_SHOT, held_out, questionnaire, settings)
        champ_label = ZERO_SHOT
    else:
        champ_eval, champ_label = None, "none"
    baseline_calls = None
    if champ_eval is None:
        champ_label, baseline_calls = constant_baseline(task, cand_eval, held_out)
    baseline = None
    if task == "answers":
        base_eval = (
            champ_eval if champ_label == ZERO_SHOT else _evaluate(task, ZERO_SHOT, held_out, questionnaire, settings)
        )
        baseline = base_eval.summary.answer_f1
    rule = GateRule(confidence=confidence, max_drop=max_drop, resamples=resamples, seed=seed)
    verdict = decide(
        task,
        cand_eval.summary,
        champ_eval.summary if champ_eval else None,
        call_counts(task, cand_eval),
        call_counts(task, champ_eval) if champ_eval else baseline_calls,
        rule,
    )
    promoted, reason = verdict.promoted, verdict.reason
    if current is not None and str(current.version) == str(version):
        promoted, reason = False, f"version {version} already is the champion"
    metric, cand_score, _ = score_of(task, cand_eval.summary)
    if champ_eval is not None:
        champ_score = score_of(task, champ_eval.summary)[1]
    else:
        assert baseline_calls is not None
        champ_score = baseline_calls.score(task)[0]
    decision = GateDecision(
        task=task,
        candidate=f"{name}/{version}",
        champion=champ_label,
        promoted=promoted,
        reason=reason,
        candidate_score=cand_score,
        champion_score=champ_score,
        metric=metric,
        per_item_drops=verdict.per_item_drops,
        held_out_calls=len(held_out),
        zero_shot_score=baseline,
        bootstrap=verdict.bootstrap,
    )
    if promoted:
        registry.promote(task, version, settings)
    registry.use(settings)
    client = MlflowClient()
    run_id = candidate_version.run_id
    if run_id:
        client.log_metric(run_id, f"gate_candidate_{metric}", cand_score)
        client.log_metric(run_id, f"gate_champion_{metric}", champ_score)
        if baseline is not None:
            client.log_metric(run_id, f"gate_zero_shot_{metric}", baseline)
        if verdict.bootstrap is not None:
            client.log_metric(run_id, "gate_p_better", verdict.bootstrap.p_better)
            client.log_metric(run_id, "gate_mean_diff", verdict.bootstrap.mean_diff)
        client.set_tag(run_id, "callqa.gate", "promoted" if promoted else "refused")
        client.set_tag(run_id, "callqa.gate_reason", reason[:5000])
        _log_report(client, run_id, decision, cand_eval, champ_eval, report_dir)
    client.set_model_version_tag(name, str(version), "gate", "promoted" if promoted else "refused")
    return decision


def latest_version(task: str, settings: Settings | None = None) -> str:
    """The newest registered version of a task."""
    from callqa.errors import ModelNotFound
    from mlflow import MlflowClient

    registry.use(settings)
    name = registry.model_name(task)
    versions = MlflowClient().search_model_versions(f"name='{name}'")
    if not versions:
        raise ModelNotFound(f"{name}: no registered versions yet (run callqa train {task})")
    return str(max(int(v.version) for v in versions))


def _log_report(
    client, run_id: str, decision: GateDecision, cand: Evaluation, champ: Evaluation | None, out: Path | None
):
    """The evaluation report (Markdown + per-question chart) and the decision, as run artifacts."""
    from evaluation.report import write_report

    out = out or Path(tempfile.mkdtemp(prefix="callqa-gate-"))
    out.mkdir(parents=True, exist_ok=True)
    write_report(cand, out / "candidate")
    if champ is not None and champ is not cand:
        write_report(champ, out / "champion")
    (out / "gate.json").write_text(json.dumps(decision.model_dump(), indent=2), encoding="utf-8")
    (out / "gate.md").write_text(gate_markdown(decision), encoding="utf-8")
    client.log_artifacts(run_id, str(out), artifact_path="evaluation")


def gate_markdown(d: GateDecision) -> str:
    verdict = "**promoted** to champion" if d.promoted else "**refused**; the champion stays"
    lines = [
        f"# Gate: {d.candidate}",
        "",
        f"{verdict}: {d.reason}.",
        "",
        f"| | {d.metric} |",
        "|---|---:|",
        f"| candidate {d.candidate} | {d.candidate_score:.3f} |",
        f"| champion {d.champion} | {d.champion_score:.3f} |",
        "",
        f"Held-out calls: {d.held_out_calls}.",
    ]
    b = d.bootstrap
    if b is not None:
        r = b.rule
        lines += [
            "",
            f"Paired bootstrap over the {b.calls} calls ({r.resamples} resamples, seed {r.seed}), "
            f"candidate − champion: observed {b.observed_diff:+.3f}, mean {b.mean_diff:+.3f}, "
            f"{100 * r.confidence:g}% interval [{b.interval[0]:+.3f}, {b.interval[1]:+.3f}]; "
            f"better in {100 * b.p_better:.1f}% of resamples (promotion needs {100 * r.confidence:g}%).",
        ]
        if b.worst_item is not None:
            lines += [
                "",
                f"Least safe item: {b.worst_item}, more than {100 * r.max_drop:g} points worse in "
                f"{100 * b.worst_item_p_worse:.1f}% of resamples (refused at {100 * r.confidence:g}%).",
            ]
    if d.per_item_drops:
        by_drop = sorted(d.per_item_drops.items(), key=lambda kv: -kv[1])
        if b is not None and b.per_item_p_worse:
            head = f"| item | drop (points) | P(drop > {100 * b.rule.max_drop:g} points) |"
            lines += ["", head, "|---|---:|---:|"]
            lines += [f"| {k} | {100 * v:+.1f} | {b.per_item_p_worse.get(k, 0.0):.3f} |" for k, v in by_drop]
        else:
            lines += ["", "| item | drop (points) |", "|---|---:|"]
            lines += [f"| {k} | {100 * v:+.1f} |" for k, v in by_drop]
    return "\n".join(lines) + "\n"
