"""Fine-tune a HuggingFace extractive-QA checkpoint as the answer model (``--backbone DIR``).

Same data as the navec model: every (question, call) pair becomes overlapping (question,
window) examples labelled with the gold span's tokens, or [CLS] for "no answer". The
checkpoint is read from a local directory (GPU boxes: a Russian BERT copied there; tests: a
tiny BERT built in place) and saved back in HuggingFace format plus our ``model.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader

from callqa.errors import ModelNotFound
from callqa.schemas import LabelledCall, Questionnaire
from callqa.understanding.hf_span import HFSpanAnswerExtractor, HFSpanConfig, encode, render_context
from training.answers import platt
from training.fit import fit, hold_out, repeat_labelled

if TYPE_CHECKING:
    from training.jobs import TrainSpec


MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class HFQAModule(pl.LightningModule):
    def __init__(self, model, lr: float) -> None:
        super().__init__()
        self.model = model
        self.lr = lr

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.model(**batch).loss
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(batch["input_ids"]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss = self.model(**batch).loss
        self.log("val_loss", loss, on_step=False, on_epoch=True, batch_size=len(batch["input_ids"]), sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=0.01)


def qa_examples(
    calls: Sequence[LabelledCall], questionnaire: Questionnaire, tokenizer, cfg: HFSpanConfig
) -> list[dict]:
    """Tokenised windows with start/end token labels (0, 0 = no answer in this window)."""
    out = []
    questions = [q.text for q in questionnaire.questions]
    for call in calls:
        context, spans = render_context(call.to_call())
        base = {t: s for t, s, _ in spans}
        gold = []
        for q in questionnaire.questions:
            g = call.answers.get(q.id)
            at = -1 if g is None else call.turns[g.turn].text.find(g.text)
            gold.append(None if g is None or at < 0 else (base[g.turn] + at, base[g.turn] + at + len(g.text)))
        enc = encode(tokenizer, questions, context, cfg)
        for w in range(enc["input_ids"].shape[0]):
            q = int(enc["overflow_to_sample_mapping"][w])
            seq = enc.sequence_ids(w)
            offs = enc["offset_mapping"][w].tolist()
            start = end = 0
            if gold[q] is not None:
                a, b = gold[q]
                ctx = [i for i, sid in enumerate(seq) if sid == 1]
                if ctx and offs[ctx[0]][0] <= a and offs[ctx[-1]][1] >= b:
                    start = next(i for i in ctx if offs[i][1] > a)
                    end = max(i for i in ctx if offs[i][0] < b)
            item = {k: enc[k][w] for k in MODEL_INPUTS if k in enc}
            item["start_positions"] = torch.tensor(start)
            item["end_positions"] = torch.tensor(end)
            out.append(item)
    return out


def _stack(batch: list[dict]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([b[k] for b in batch]) for k in batch[0]}


def train_hf_answers(
    spec: TrainSpec, calls: Sequence[LabelledCall], questionnaire: Questionnaire, target: Path, run_id, tracking_uri
) -> dict[str, float]:
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    source = Path(spec.backbone or "")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        model = AutoModelForQuestionAnswering.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelNotFound(f"--backbone {source}: not a local HuggingFace QA checkpoint ({exc})") from exc
    cfg = HFSpanConfig()
    train_calls, cal = hold_out(calls, 1 / 8, spec.fit.seed, lambda c: c.call_id)
    weighted = repeat_labelled(train_calls, spec.labelled_weight, lambda c: c.call_id)
    train = DataLoader(
        qa_examples(weighted, questionnaire, tokenizer, cfg),
        batch_size=spec.fit.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(spec.fit.seed),
        collate_fn=_stack,
    )
    val_items = qa_examples(cal, questionnaire, tokenizer, cfg)
    val = DataLoader(val_items, batch_size=spec.fit.batch_size, collate_fn=_stack) if val_items else None
    module = HFQAModule(model, spec.fit.lr)
    metrics = fit(module, train, val, spec.fit, run_id, tracking_uri)
    extractor = HFSpanAnswerExtractor(module.model, tokenizer, cfg, questionnaire)
    metrics |= calibrate_hf(extractor, cal)
    extractor.save(target)
    return metrics


def calibrate_hf(extractor: HFSpanAnswerExtractor, calls: Sequence[LabelledCall]) -> dict[str, float]:
    """Platt scaling of the margin on held-back calls (right: the span overlaps the gold one with F1 ≥ 0.5)."""
    margins, right = [], []
    for call in calls:
        for q, (margin, turn, a, b) in zip(
            extractor.questionnaire.questions, extractor.spans(call.to_call()), strict=True
        ):
            if turn < 0:
                continue
            g = call.answers.get(q.id)
            ok = False
            if g is not None and g.turn == turn:
                ga = call.turns[turn].text.find(g.text)
                gb = ga + len(g.text)
                overlap = max(0, min(b, gb) - max(a, ga))
                ok = ga >= 0 and overlap > 0 and 2 * overlap / ((b - a) + (gb - ga)) >= 0.5
            margins.append(margin)
            right.append(ok)
    if not margins:
        return {}
    extractor.config.calibration = platt(np.array(margins), np.array(right, dtype=float))
    return {"calibration_right_share": float(np.mean(right))}
