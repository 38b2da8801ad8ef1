"""Evaluation reports: Markdown with the tables and the misses, and a per-question PNG chart."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from evaluation.harness import Evaluation
from evaluation.metrics import AnswerMetrics

MAX_MISSES = 60


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def _overall_rows(name: str, m: AnswerMetrics) -> str:
    return (
        f"| {name} | {m.n_calls} | **{_pct(m.answer_f1)}** | {_pct(m.answer_precision)} | "
        f"{_pct(m.answer_recall)} | {_pct(m.answer_accuracy)} | {_pct(m.span_em)} | {_pct(m.span_f1)} |"
    )


def per_question_chart(evaluation: Evaluation, path: Path) -> Path:
    """Grouped bars of precision, recall and F1 per question."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    per_q = evaluation.summary.per_question
    ids = list(per_q)
    x = np.arange(len(ids))
    width = 0.27
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(ids)), 4.8))
    for k, (name, color) in enumerate((("precision", "#4c72b0"), ("recall", "#dd8452"), ("f1", "#55a868"))):
        ax.bar(x + (k - 1) * width, [getattr(per_q[i], name) for i in ids], width, label=name, color=color)
    ax.set_xticks(x, ids, rotation=35, ha="right")
    ax.set_ylim(0, 1.05)
    ax.axhline(evaluation.summary.answer_f1, color="#55a868", linestyle="--", linewidth=1, label="overall F1")
    ax.set_title(f"Answer metrics per question — {evaluation.summary.model}")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(evaluation: Evaluation, out_dir: str | Path) -> Path:
    """Write ``report.md`` and ``per_question.png`` into ``out_dir``; returns the Markdown path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s = evaluation.summary
    chart = per_question_chart(evaluation, out / "per_question.png")
    lines = [
        f"# Answer extraction — {s.model}",
        "",
        f"- data: {', '.join(s.data) or '(in memory)'} — {s.n_calls} calls, dataset hash `{s.dataset_hash}`",
        f"- questionnaire: `{s.questionnaire}`",
        f"- evaluated: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, {1000 * s.seconds_per_call:.0f} ms per call",
        "",
        "A predicted answer matches the gold one when token-F1 ≥ 0.5 or the normalised values are equal.",
        "Accuracy counts agreement on “no answer” as correct, so read it beside F1.",
        "",
        "| set | calls | answer F1 | precision | recall | accuracy | span EM | span F1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        _overall_rows("all", s),
    ]
    if s.halves:
        lines += [_overall_rows(name, m) for name, m in s.halves.items()]
    lines += [
        "",
        "## Per question",
        "",
        f"![per question]({chart.name})",
        "",
        "| question | gold | predicted | matched | precision | recall | F1 | span F1 | value acc |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for qid, m in s.per_question.items():
        lines.append(
            f"| {qid} | {m.n_gold} | {m.n_pred} | {m.n_match} | {_pct(m.precision)} | {_pct(m.recall)} | "
            f"**{_pct(m.f1)}** | {_pct(m.span_f1)} | {_pct(m.value_accuracy)} |"
        )
    lines += ["", "## Value accuracy by kind", "", "| kind | accuracy |", "|---|---:|"]
    lines += [f"| {kind} | {_pct(acc)} |" for kind, acc in s.value_accuracy.items()]
    misses = [o for o in evaluation.outcomes if not o.correct]
    lines += ["", f"## Misses ({len(misses)}; first {min(len(misses), MAX_MISSES)})", ""]
    lines += ["| call | question | gold | predicted |", "|---|---|---|---|"]
    for o in misses[:MAX_MISSES]:
        gold = f"{o.gold.text} (= {o.gold.value})" if o.gold else "—"
        pred = f"{o.pred.text} (= {o.pred.value}, {o.pred.confidence:.2f})" if o.pred else "—"
        lines.append(f"| {o.call_id} | {o.question_id} | {_md(gold)} | {_md(pred)} |")
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
