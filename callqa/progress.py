"""One progress-bar style for long work (featurising, evaluating, batch analysis)."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def progress(enabled: bool = True) -> Progress:
    """A transient rich progress bar on stderr; ``enabled=False`` draws nothing."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
        disable=not enabled,
    )
