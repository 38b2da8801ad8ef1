"""End-to-end fine-tuning of the answer model: the encoder and the span head trained together.

The GPU recipe (``callqa train answers --finetune-encoder --accelerator gpu``). The CPU recipe
(``training.answers``) trains the head on the frozen encoder's cached states; this one runs the
encoder inside each step instead: a head window's words go through the encoder as one input
(``<s> passage: … </s>``), and each word's vector is the mean of its tokens' states, pooled
by a matrix in the batch, so gradients reach every encoder layer. Everything else (features,
targets, head, loss, calibration) is the CPU recipe's. The fine-tuned encoder is saved inside
the model directory (``encoder/``) and served from there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from callqa.encoder.runtime import MANIFEST, TextEncoder, TorchStates
from callqa.understanding.span_model import SpanConfig, Window, collate
from training.answers import SpanModule

ENCODER_DIR = "encoder"


def finetune_collate(
    batch: Sequence[Window], questions: np.ndarray, encoder: TextEncoder, max_tokens: int = 510
) -> dict[str, torch.Tensor]:
    """``collate``'s tensors plus each window's encoder input and the (B, T, S) matrix that averages the
    encoder states of each word's tokens."""
    out = collate(batch, questions)
    prefix = encoder.prefix_ids
    head = 1 + len(prefix)
    rows, ranges = [], []
    t = out["words"].shape[1]
    for w in batch:
        f = w.call
        if f.pieces is None or f.encoder_ids is None:
            raise ValueError("end-to-end fine-tuning needs features made with an encoder")
        pieces = f.pieces[w.lo : w.hi]
        has = pieces[:, 1] > pieces[:, 0]
        first = int(pieces[has, 0].min()) if has.any() else 0
        last = int(pieces[has, 1].max()) if has.any() else 0
        last = min(last, first + max_tokens - head - 1)
        rows.append([encoder.bos, *prefix, *f.encoder_ids[first:last].tolist(), encoder.eos])
        ranges.append((pieces, first, last))
    s = max(len(r) for r in rows)
    ids = np.full((len(rows), s), encoder.pad, dtype=np.int64)
    mask = np.zeros((len(rows), s), dtype=np.int64)
    pool = np.zeros((len(rows), t, s), np.float32)
    for i, (row, (pieces, first, last)) in enumerate(zip(rows, ranges, strict=True)):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
        for k, (lo, hi) in enumerate(pieces):
            a, b = max(int(lo), first), min(int(hi), last)
            if b > a:
                pool[i, k, head + a - first : head + b - first] = 1.0 / (b - a)
    out["input_ids"] = torch.from_numpy(ids)
    out["attention_mask"] = torch.from_numpy(mask)
    out["pool"] = torch.from_numpy(pool)
    return out


class EndToEndSpanModule(SpanModule):
    """``SpanModule`` whose word vectors come from an encoder trained in the same step."""

    def __init__(
        self,
        config: SpanConfig,
        questions: np.ndarray,
        encoder_model: torch.nn.Module,
        lr: float = 2e-3,
        encoder_lr: float = 3e-5,
        weight_decay: float = 1e-4,
        ema_decay: float = 0.0,
    ) -> None:
        super().__init__(config, questions, lr=lr, weight_decay=weight_decay, ema_decay=ema_decay)
        self.encoder = encoder_model
        self.encoder_lr = encoder_lr

    def _loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hidden = self.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        words = torch.bmm(batch["pool"], hidden)  # (B, T, H): each word's mean token state
        return super()._loss({**batch, "words": words})

    def configure_optimizers(self):
        return torch.optim.AdamW(
            [
                {"params": self.net.parameters(), "lr": self.lr},
                {"params": self.encoder.parameters(), "lr": self.encoder_lr},
            ],
            weight_decay=self.weight_decay,
        )


def save_encoder(model: torch.nn.Module, tokenizer, out: Path, base: str) -> str:
    """Save a fine-tuned encoder as an HF directory with a manifest naming it by its weights; its id."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    weights = sorted(out.glob("*.safetensors")) or sorted(out.glob("*.bin"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in weights)).hexdigest()
    name = f"{base.split(':', maxsplit=1)[0]}-finetuned"
    (out / MANIFEST).write_text(
        json.dumps({"name": name, "source_sha256": digest, "fine_tuned_from": base}, indent=2), encoding="utf-8"
    )
    return f"{name}:{digest[:12]}"


def in_memory_encoder(model: torch.nn.Module, like: TextEncoder, name: str) -> TextEncoder:
    """A ``TextEncoder`` over a model being trained (its tokenizer and windows from ``like``)."""
    model.eval()
    return TextEncoder(
        like.tokenizer,
        TorchStates(model),
        window=like.window,
        stride=like.stride,
        max_batch=like.max_batch,
        name=name,
    )
