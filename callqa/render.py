"""Human-readable views of results for the terminal (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from callqa.schemas import AnswerValue, CallResult, GoldAnswer, LabelledCall, Questionnaire


def format_value(value: AnswerValue) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "да" if value else "нет"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:,.0f} ₽".replace(",", " ") if value >= 1000 else f"{value:g}"
    return str(value)


def answers_table(
    result: CallResult, questionnaire: Questionnaire, labelled: LabelledCall | None = None, matches=None
) -> Table:
    """One row per question: the answer, its value and confidence (and the gold answer, if known)."""
    table = Table(title=f"{result.call_id}", title_justify="left", show_lines=False, expand=False)
    table.add_column("question")
    table.add_column("answer", overflow="fold", max_width=60)
    table.add_column("value", overflow="fold", max_width=28)
    table.add_column("conf", justify="right")
    if labelled is not None:
        table.add_column("gold", overflow="fold", max_width=40)
        table.add_column("", justify="center")
    for q in questionnaire.questions:
        answer = result.answer_for(q.id)
        row = [
            q.id,
            answer.text if answer else "—",
            format_value(answer.value) + (f" ({answer.resolved_date})" if answer and answer.resolved_date else "")
            if answer
            else "",
            f"{answer.confidence:.2f}" if answer else "",
        ]
        if labelled is not None:
            gold: GoldAnswer | None = labelled.answers.get(q.id)
            ok = matches.get(q.id) if matches else None
            row += [gold.text if gold else "—", "[green]✓[/]" if ok else "[red]✗[/]"]
        table.add_row(*row)
    return table


def transcript_table(result: CallResult, limit: int | None = None) -> Table:
    """The diarized transcript: speaker, start–end seconds and text per turn (the first ``limit`` turns)."""
    turns = result.turns if limit is None else result.turns[:limit]
    more = len(result.turns) - len(turns)
    caption = f"… {more} more turns" if more > 0 else None
    table = Table(title=f"{result.call_id}: transcript", title_justify="left", caption=caption, caption_justify="left")
    table.add_column("speaker")
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("text", overflow="fold", max_width=90)
    for t in turns:
        when = f"{t.start:6.1f}–{t.end:6.1f}" if t.start is not None and t.end is not None else ""
        table.add_row(t.speaker.value, when, t.text)
    return table


def print_result(result: CallResult, questionnaire: Questionnaire, console: Console | None = None) -> None:
    console = console or Console()
    if result.audio is not None:
        console.print(transcript_table(result))
    console.print(answers_table(result, questionnaire))
    m = result.metrics
    console.print(
        f"agent talk share {m.agent_word_share:.0%} · questions {m.agent_questions} "
        f"· filler words {sum(m.filler_words.values())} · value-reducing {sum(m.value_reducing_words.values())} "
        f"· topics covered {len(m.topics_covered)}/{len(m.topics_covered) + len(m.topics_missing)}"
    )
    if m.timing is not None:
        t = m.timing
        console.print(
            f"talk/listen {t.agent_talk_share:.0%}/{t.client_talk_share:.0%} · longest monologue agent "
            f"{t.agent_longest_monologue:.0f} s, client {t.client_longest_monologue:.0f} s · interruptions "
            f"{t.interruptions} · pauses {t.pause_count} · {t.speaker_switches_per_minute:.1f} switches/min"
        )
