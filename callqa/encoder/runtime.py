"""A call through a pretrained text encoder: one pass per window, token states shared by every model.

The call is rendered as one passage ("Менеджер: …" / "Клиент: …" per turn), tokenised once
with character offsets, and cut into overlapping windows of at most ``window`` tokens, each
``<s> passage: … </s>``. Each token keeps its state from the window where it sits farthest
from an edge. The answer, error and call-type models all read these states (and the
per-turn means), so the encoder runs once per call whatever the number of questions.

Backends compute ``(input_ids, attention_mask) → hidden states``: PyTorch in process
(``TorchStates``, any HF encoder directory) or an ONNX export (``callqa.encoder.onnx``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from callqa.errors import ModelNotFound
from callqa.schemas import Call, Speaker

log = logging.getLogger(__name__)

SPEAKER_PREFIX = {Speaker.AGENT: "Менеджер: ", Speaker.CLIENT: "Клиент: ", Speaker.UNKNOWN: ""}
PASSAGE, QUERY = "passage: ", "query: "
MANIFEST = "encoder.json"


class StatesBackend(Protocol):
    """Hidden states (B, T, H) float32 for a padded batch of token ids (B, T) and its mask."""

    hidden: int

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray: ...


@dataclass
class CallEncoding:
    """One call's tokens and their encoder states."""

    call_id: str
    turn_of: np.ndarray  # (N,) turn index of each token, -1: a speaker label
    spans: np.ndarray  # (N, 2) character span of each token in its turn's text
    states: np.ndarray  # (N, H) float32
    turn_states: np.ndarray  # (turns, H) mean state of each turn's own tokens (zeros: a turn without tokens)
    ids: np.ndarray | None = None  # (N,) the token ids (what end-to-end fine-tuning feeds the encoder again)

    def __len__(self) -> int:
        return len(self.turn_of)

    def pieces(self, turn: int, spans: Sequence[tuple[int, int]]) -> np.ndarray:
        """(len(spans), 2): the [first, last + 1) token indices overlapping each character span of ``turn``
        (0, 0 where none does)."""
        out = np.zeros((len(spans), 2), np.int64)
        idx = np.flatnonzero(self.turn_of == turn)
        if not len(idx):
            return out
        starts, ends = self.spans[idx, 0], self.spans[idx, 1]
        for k, (a, b) in enumerate(spans):
            sel = idx[(starts < b) & (ends > a)]
            if len(sel):
                out[k] = (sel[0], sel[-1] + 1)
        return out

    def pool(self, turn: int, spans: Sequence[tuple[int, int]]) -> np.ndarray:
        """(len(spans), H): the mean state of the tokens overlapping each character span of ``turn``."""
        out = np.zeros((len(spans), self.states.shape[1]), np.float32)
        idx = np.flatnonzero(self.turn_of == turn)
        if not len(idx) or not len(spans):
            return out
        starts, ends = self.spans[idx, 0], self.spans[idx, 1]
        for k, (a, b) in enumerate(spans):
            sel = idx[(starts < b) & (ends > a)]
            if len(sel):
                out[k] = self.states[sel].mean(0)
        return out


def render(call: Call) -> tuple[str, list[tuple[int, int, int]]]:
    """The call as one passage, and (turn, start, end) of each turn's own text in it."""
    parts, spans, pos = [], [], 0
    for i, turn in enumerate(call.turns):
        prefix = SPEAKER_PREFIX.get(turn.speaker, "")
        start = pos + len(prefix)
        parts.append(prefix + turn.text)
        spans.append((i, start, start + len(turn.text)))
        pos = start + len(turn.text) + 1
    return "\n".join(parts), spans


class TorchStates:
    """An HF encoder directory run by PyTorch in this process (fp32)."""

    def __init__(self, model) -> None:
        self.model = model.eval()
        self.hidden = int(model.config.hidden_size)

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self.model(
                input_ids=torch.from_numpy(input_ids.astype(np.int64)),
                attention_mask=torch.from_numpy(attention_mask.astype(np.int64)),
            )
        return out.last_hidden_state.numpy()


def load_hf_encoder(path: str | Path):
    """(model, tokenizer) of a local HF encoder directory; nothing is downloaded."""
    from transformers import AutoModel, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise ModelNotFound(f"{path}: not a Hugging Face encoder directory (no config.json)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        try:
            model = AutoModel.from_pretrained(path, local_files_only=True, add_pooling_layer=False)
        except TypeError:  # encoders without a pooler option
            model = AutoModel.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelNotFound(f"{path}: cannot load the encoder ({exc})") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelNotFound(f"{path}: the encoder needs a fast tokenizer (tokenizer.json) for character offsets")
    return model.eval(), tokenizer


def encoder_id(path: str | Path) -> str:
    """A short stable id of an encoder directory: its manifest's source hash, else a hash of its config."""
    path = Path(path)
    manifest = path / MANIFEST
    if manifest.is_file():
        data = json.loads(manifest.read_text(encoding="utf-8"))
        return f"{data.get('name', path.name)}:{str(data.get('source_sha256', ''))[:12]}"
    digest = hashlib.sha256((path / "config.json").read_bytes()).hexdigest()[:12]
    return f"{path.name}:{digest}"


class TextEncoder:
    """Tokenises calls and questions and runs a states backend over their windows."""

    def __init__(
        self,
        tokenizer,
        backend: StatesBackend,
        window: int = 256,
        stride: int = 192,
        max_batch: int = 16,
        name: str = "encoder",
    ) -> None:
        self.tokenizer = tokenizer
        tokenizer.model_max_length = 10**9  # calls are windowed here, never truncated
        self.backend = backend
        self.window = window
        self.stride = stride
        self.max_batch = max_batch
        self.name = name
        self.hidden = backend.hidden
        self._prefix = self._content_ids(PASSAGE)
        self.bos = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        self.eos = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        self.pad = tokenizer.pad_token_id or 0

    @classmethod
    def load(cls, path: str | Path, **kwargs) -> TextEncoder:
        """The encoder directory at ``path`` run by PyTorch."""
        model, tokenizer = load_hf_encoder(path)
        return cls(tokenizer, TorchStates(model), name=kwargs.pop("name", encoder_id(path)), **kwargs)

    def _content_ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @property
    def prefix_ids(self) -> list[int]:
        """The content ids every window starts with (``passage: ``)."""
        return list(self._prefix)

    @property
    def content_window(self) -> int:
        return self.window - 2 - len(self._prefix)

    def tokenize(self, call: Call) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Token ids of the rendered call, each token's turn (-1: speaker labels) and char span in its turn."""
        text, turn_spans = render(call)
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = np.asarray(enc["input_ids"], dtype=np.int64)
        offsets = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
        turn_of = np.full(len(ids), -1, dtype=np.int64)
        spans = np.zeros((len(ids), 2), dtype=np.int64)
        if turn_spans and len(ids):
            starts = np.array([s for _, s, _ in turn_spans])
            ends = np.array([e for _, _, e in turn_spans])
            mid = offsets[:, 0]
            k = np.clip(np.searchsorted(starts, mid, side="right") - 1, 0, None)
            inside = (offsets[:, 1] > offsets[:, 0]) & (mid >= starts[k]) & (offsets[:, 1] <= ends[k] + 0)
            turn_of = np.where(inside, k, -1)
            spans = np.stack([offsets[:, 0] - starts[k], offsets[:, 1] - starts[k]], 1)
            spans = np.where(inside[:, None], spans, 0)
        return ids, turn_of, spans

    def windows(self, n: int) -> list[tuple[int, int]]:
        """(lo, hi) content-token ranges that cover ``n`` tokens with overlap."""
        size = self.content_window
        if n <= size:
            return [(0, n)]
        out, lo = [], 0
        step = max(1, min(self.stride, size * 3 // 4))  # windows always overlap
        while True:
            hi = min(n, lo + size)
            out.append((lo, hi))
            if hi == n:
                return out
            lo += step

    def _batch(self, pieces: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        t = max(len(p) for p in pieces) + 2 + len(self._prefix)
        ids = np.full((len(pieces), t), self.pad, dtype=np.int64)
        mask = np.zeros((len(pieces), t), dtype=np.int64)
        for i, p in enumerate(pieces):
            row = [self.bos, *self._prefix, *p.tolist(), self.eos]
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return ids, mask

    def encode_many(self, calls: Sequence[Call]) -> list[CallEncoding]:
        """Every call's token states; the windows of all calls run together in batches of ``max_batch``."""
        tokenised = [self.tokenize(c) for c in calls]
        jobs = [(ci, lo, hi) for ci, (ids, _, _) in enumerate(tokenised) for lo, hi in self.windows(len(ids))]
        # similar lengths together: less padding
        jobs.sort(key=lambda j: j[2] - j[1])
        states = [np.zeros((len(ids), self.hidden), np.float32) for ids, _, _ in tokenised]
        best_margin = [np.full(len(ids), -1, dtype=np.int64) for ids, _, _ in tokenised]
        skip = 1 + len(self._prefix)
        for k in range(0, len(jobs), self.max_batch):
            chunk = jobs[k : k + self.max_batch]
            ids, mask = self._batch([tokenised[ci][0][lo:hi] for ci, lo, hi in chunk])
            hidden = self.backend(ids, mask)
            for j, (ci, lo, hi) in enumerate(chunk):
                n = hi - lo
                pos = np.arange(n)
                n_total = len(tokenised[ci][0])
                # distance to the nearest window edge that is not the call's own edge
                left = np.where(lo == 0, n_total, pos)
                right = np.where(hi == n_total, n_total, n - 1 - pos)
                margin = np.minimum(left, right)
                better = margin > best_margin[ci][lo:hi]
                states[ci][lo:hi][better] = hidden[j, skip : skip + n][better]
                best_margin[ci][lo:hi] = np.maximum(best_margin[ci][lo:hi], margin)
        out = []
        for call, (ids, turn_of, spans), st in zip(calls, tokenised, states, strict=True):
            turns = np.zeros((len(call.turns), self.hidden), np.float32)
            for t in range(len(call.turns)):
                sel = turn_of == t
                if sel.any():
                    turns[t] = st[sel].mean(0)
            out.append(CallEncoding(call.call_id, turn_of, spans, st, turns, ids))
        return out

    def encode(self, call: Call) -> CallEncoding:
        return self.encode_many([call])[0]

    def encoding_of(self, doc) -> CallEncoding:
        """The encoding of a prepared call (``CallDocument``), computed once and kept on it."""
        return self.encode_documents([doc])[0]

    def encode_documents(self, docs: Sequence) -> list[CallEncoding]:
        """``encoding_of`` for several documents; the missing ones are encoded together."""
        todo = [d for d in docs if self.name not in d.encodings]
        if todo:
            for d, enc in zip(todo, self.encode_many([d.call for d in todo]), strict=True):
                d.encodings[self.name] = enc
        return [d.encodings[self.name] for d in docs]

    def embed(self, texts: Sequence[str], kind: str = "query") -> np.ndarray:
        """L2-normalised mean-pooled sentence embeddings (e5's ``query: `` / ``passage: `` convention)."""
        if not texts:
            return np.zeros((0, self.hidden), np.float32)
        prefix = QUERY if kind == "query" else PASSAGE
        rows = [self._content_ids(prefix + t)[: self.window - 2] for t in texts]
        out = np.zeros((len(rows), self.hidden), np.float32)
        for k in range(0, len(rows), self.max_batch):
            chunk = rows[k : k + self.max_batch]
            t = max(len(r) for r in chunk) + 2
            ids = np.full((len(chunk), t), self.pad, dtype=np.int64)
            mask = np.zeros((len(chunk), t), dtype=np.int64)
            for i, r in enumerate(chunk):
                full = [self.bos, *r, self.eos]
                ids[i, : len(full)] = full
                mask[i, : len(full)] = 1
            hidden = self.backend(ids, mask)
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
            out[k : k + len(chunk)] = pooled
        return out / np.linalg.norm(out, axis=1, keepdims=True).clip(1e-12)
