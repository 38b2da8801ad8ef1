"""The evaluation gate: a new version becomes ``champion`` only if it is better on a held-out split.

Both the candidate and the current champion are scored on the same held-out calls. Answers:
the candidate must beat the champion's ``answer_f1`` (with no champion yet, the zero-shot
baseline stands in) and no question's F1 may drop by more than ``max_drop`` (2 points).
Errors: the same rule on macro-F1 and per-error F1. Call type: higher accuracy. The
decision, both scores and the report go into the candidate's MLflow run.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from callqa import registry
from callqa.models import ZERO_SHOT, load_answer_extractor, load_classifier
from callqa.schemas import LabelledCall, Questionnaire
from callqa.settings import Settings, get_settings
from evaluation.harness import Evaluation, EvaluationSummary, evaluate_answers

MAX_DROP = 0.02


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


def decide(
    task: str, candidate: EvaluationSummary, champion: EvaluationSummary | None, max_drop: float = MAX_DROP
) -> tuple[bool, str, dict[str, float]]:
    """Promote or not, and why (pure: the rule itself, testable without a registry)."""
    metric, cand, cand_items = score_of(task, candidate)
    if champion is None:
        return True, f"no champion yet; {metric} {cand:.3f}", {}
    _, champ, champ_items = score_of(task, champion)
    drops = {k: round(champ_items[k] - v, 4) for k, v in cand_items.items() if k in champ_items}
    worst = max(drops.items(), key=lambda kv: kv[1], default=(None, 0.0))
    if cand <= champ:
        return False, f"{metric} {cand:.3f} is not better than the champion's {champ:.3f}", drops
    if worst[0] is not None and worst[1] > max_drop:
        return False, f"{metric} {cand:.3f} > {champ:.3f}, but {worst[0]} drops {100 * worst[1]:.1f} points", drops
    return True, f"{metric} {cand:.3f} > {champ:.3f}; no item drops more than {100 * max_drop:.0f} points", drops


def run_gate(
    task: str,
    version: str,
    held_out: Sequence[LabelledCall],
    questionnaire: Questionnaire,
    settings: Settings | None = None,
    max_drop: float = MAX_DROP,
    report_dir: Path | None = None,
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
    baseline = None
    if task == "answers":
        base_eval = (
            champ_eval if champ_label == ZERO_SHOT else _evaluate(task, ZERO_SHOT, held_out, questionnaire, settings)
        )
        baseline = base_eval.summary.answer_f1
    promoted, reason, drops = decide(task, cand_eval.summary, champ_eval.summary if champ_eval else None, max_drop)
    if current is not None and str(current.version) == str(version):
        promoted, reason = False, f"version {version} already is the champion"
    metric, cand_score, _ = score_of(task, cand_eval.summary)
    champ_score = score_of(task, champ_eval.summary)[1] if champ_eval else 0.0
    decision = GateDecision(
        task=task,
        candidate=f"{name}/{version}",
        champion=champ_label,
        promoted=promoted,
        reason=reason,
        candidate_score=cand_score,
        champion_score=champ_score,
        metric=metric,
        per_item_drops=drops,
        held_out_calls=len(held_out),
        zero_shot_score=baseline,
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
    if d.per_item_drops:
        lines += ["", "| item | drop (points) |", "|---|---:|"]
        lines += [f"| {k} | {100 * v:+.1f} |" for k, v in sorted(d.per_item_drops.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines) + "\n"
