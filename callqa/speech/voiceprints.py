"""Manager voiceprints: a speaker embedding per manager, enrolled from their own earlier calls.

A voiceprint lets role assignment find the manager on a mono call even when he does not
introduce himself. Stored as one JSON file per manager (vector + provenance) under the
store's directory; the embedding model's name is kept so prints from another model are
never compared with this one's.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from callqa.errors import BadInput

_MANAGER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")


class Voiceprint(BaseModel):
    manager_id: str
    model: str
    vector: list[float]
    calls: list[str]
    seconds: float
    enrolled_at: datetime

    def array(self) -> np.ndarray:
        vec = np.asarray(self.vector, dtype=np.float32)
        return vec / (np.linalg.norm(vec) or 1.0)


def check_manager_id(manager_id: str) -> str:
    if not _MANAGER_ID.match(manager_id):
        raise BadInput(f"manager id {manager_id!r}: use letters, digits, '_', '.', '@' or '-' (max 128)")
    return manager_id


class VoiceprintStore:
    """Voiceprints on local disk (one JSON file per manager)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, manager_id: str) -> Path:
        return self.root / f"{check_manager_id(manager_id)}.json"

    def save(
        self, manager_id: str, model: str, embeddings: list[np.ndarray], calls: list[str], seconds: float
    ) -> Voiceprint:
        """Average the per-call embeddings into the manager's voiceprint and store it."""
        if not embeddings:
            raise BadInput(f"no speech of manager {manager_id!r} found in the enrolment calls")
        mean = np.mean([e / (np.linalg.norm(e) or 1.0) for e in embeddings], axis=0)
        vp = Voiceprint(
            manager_id=check_manager_id(manager_id),
            model=model,
            vector=[float(x) for x in mean / (np.linalg.norm(mean) or 1.0)],
            calls=calls,
            seconds=round(seconds, 2),
            enrolled_at=datetime.now(UTC),
        )
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._path(manager_id).with_suffix(".tmp")
        tmp.write_text(vp.model_dump_json(), encoding="utf-8")
        tmp.replace(self._path(manager_id))
        return vp

    def load(self, manager_id: str, model: str | None = None) -> Voiceprint | None:
        """The manager's voiceprint (None if not enrolled, or enrolled with another model)."""
        path = self._path(manager_id)
        if not path.is_file():
            return None
        vp = Voiceprint.model_validate(json.loads(path.read_text(encoding="utf-8")))
        return vp if model is None or vp.model == model else None

    def managers(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.json")) if self.root.is_dir() else []
