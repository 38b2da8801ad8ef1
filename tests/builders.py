"""Data builders for tests: small calls written inline rather than large fixture files."""

from __future__ import annotations

from pathlib import Path

from callqa.schemas import Call, LabelledCall, Turn

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def make_call(*turns: tuple[str, str], call_id: str = "t-1", **kwargs: object) -> Call:
    """A call from (speaker, text) pairs: ``make_call(("AGENT", "..."), ("CLIENT", "..."))``."""
    return Call(call_id=call_id, turns=[Turn(speaker=s, text=t) for s, t in turns], **kwargs)


def make_labelled(
    *turns: tuple[str, str], answers: dict[str, tuple[int, str, object] | None] | None = None, **kwargs: object
) -> LabelledCall:
    """A labelled call; answers map question id → (turn, exact text, value) or None."""
    return LabelledCall(
        call_id=str(kwargs.pop("call_id", "l-1")),
        turns=[Turn(speaker=s, text=t) for s, t in turns],
        answers={
            q: (None if a is None else {"turn": a[0], "text": a[1], "value": a[2]}) for q, a in (answers or {}).items()
        },
        **kwargs,
    )
