"""Deterministic splits by call id, so one call never lands on both sides."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from callqa.schemas import LabelledCall


def half_of(call_id: str, salt: str = "callqa") -> int:
    """0 or 1: which half a call belongs to (stable across runs, machines and file order)."""
    return hashlib.sha256(f"{salt}:{call_id}".encode()).digest()[0] & 1


def split_halves(calls: Sequence[LabelledCall], salt: str = "callqa") -> tuple[list[LabelledCall], list[LabelledCall]]:
    """Split calls into two halves by a hash of their id."""
    a = [c for c in calls if half_of(c.call_id, salt) == 0]
    b = [c for c in calls if half_of(c.call_id, salt) == 1]
    return a, b
