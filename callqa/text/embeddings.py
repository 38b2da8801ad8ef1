"""Russian word vectors (navec "news", shipped inside the natasha wheel), loaded lazily once."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np


class WordVectors:
    """Unit-length word vectors with a cache; unknown words have none."""

    def __init__(self, navec: object) -> None:
        self._navec = navec
        self._cache: dict[str, np.ndarray | None] = {}

    def vector(self, word: str) -> np.ndarray | None:
        if word not in self._cache:
            vec = self._navec.get(word)  # type: ignore[attr-defined]
            if vec is not None:
                norm = float(np.linalg.norm(vec))
                vec = (vec / norm).astype(np.float32) if norm else None
            self._cache[word] = vec
        return self._cache[word]

    def similarity(self, a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        """Cosine similarity matrix (len(a) × len(b)); 0 where a word has no vector."""
        dim = 300
        ma = np.zeros((len(a), dim), dtype=np.float32)
        mb = np.zeros((len(b), dim), dtype=np.float32)
        for i, w in enumerate(a):
            v = self.vector(w)
            if v is not None:
                ma[i] = v
        for j, w in enumerate(b):
            v = self.vector(w)
            if v is not None:
                mb[j] = v
        return ma @ mb.T


@lru_cache(maxsize=1)
def load_word_vectors() -> WordVectors:
    """The navec news embeddings (≈0.5 s to load, 250k words × 300 dims, quantised)."""
    from natasha import NewsEmbedding

    return WordVectors(NewsEmbedding())
