"""Fine-tune the error (multi-label) and call-type classifiers (``callqa.understanding.classifiers``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from callqa.encoder.runtime import TextEncoder
from callqa.encoder.store import EncodingCache, attach_encodings
from callqa.pipeline import Analysis, MeasureText
from callqa.progress import progress
from callqa.schemas import CallType, ErrorId, LabelledCall, Questionnaire
from callqa.settings import get_settings
from callqa.text.lexicon import load_lexicon
from callqa.understanding.answers import ZeroShotAnswerExtractor
from callqa.understanding.classifiers import (
    CallVectors,
    ClassifierConfig,
    TurnAttentionNet,
    TurnClassifier,
    TurnFeaturizer,
    collate_vectors,
)
from callqa.understanding.document import CallDocument
from training.fit import hold_out, repeat_labelled

LABELS = {"errors": [e.value for e in ErrorId], "calltype": [t.value for t in CallType]}


class ClassifierModule(pl.LightningModule):
    def __init__(self, config: ClassifierConfig, lr: float = 3e-3, weight_decay: float = 1e-4):
        super().__init__()
        self.config = config
        self.net = TurnAttentionNet(config)
        self.lr = lr
        self.weight_decay = weight_decay
        self.loss = nn.BCEWithLogitsLoss() if config.multi_label else nn.CrossEntropyLoss()

    def _step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        logits, _ = self.net(batch["turns"], batch["metrics"], batch["lengths"])
        target = batch["target"] if self.config.multi_label else batch["target"].argmax(-1)
        return self.loss(logits, target), logits

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, _ = self._step(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(batch["lengths"]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, logits = self._step(batch)
        n = len(batch["lengths"])
        self.log("val_loss", loss, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        if self.config.multi_label:
            acc = ((logits > 0).float() == batch["target"]).float().mean()
        else:
            acc = (logits.argmax(-1) == batch["target"].argmax(-1)).float().mean()
        self.log("val_accuracy", acc, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


def target_of(task: str, call: LabelledCall) -> np.ndarray | None:
    labels = LABELS[task]
    if task == "errors":
        return np.array([float(label in call.errors) for label in labels], np.float32)
    if call.call_type is None:
        return None
    return np.array([float(label == call.call_type) for label in labels], np.float32)


@dataclass
class ClassifierData:
    task: str
    featurizer: TurnFeaturizer
    train: list[CallVectors]
    calibration: list[CallVectors]
    labelled_weight: int

    def train_items(self) -> list[CallVectors]:
        return repeat_labelled(self.train, self.labelled_weight, lambda v: v.call_id)


def prepare_classifier(
    task: str,
    calls: Sequence[LabelledCall],
    questionnaire: Questionnaire,
    calibration_share: float = 0.15,
    labelled_weight: int = 4,
    seed: int = 0,
    show_progress: bool = True,
    encoder: TextEncoder | None = None,
    encodings: EncodingCache | None = None,
) -> ClassifierData:
    """Featurise calls (turn vectors + call metrics) and hold out a calibration slice."""
    lexicon = load_lexicon(get_settings().lexicon)
    zero_shot = ZeroShotAnswerExtractor(questionnaire, lexicon=lexicon)
    measure = MeasureText(lexicon, zero_shot)
    featurizer = TurnFeaturizer(lexicon, zero_shot.vectors, encoder=encoder, task=task)
    items = []
    calls = [c for c in calls if target_of(task, c) is not None]
    docs = [CallDocument.build(c.to_call(), lexicon) for c in calls]
    if encoder is not None:
        attach_encodings(docs, encoder, encodings, show_progress)
    with progress(show_progress) as bar:
        job = bar.add_task(f"featurising calls ({task})", total=len(calls))
        for call, doc in zip(calls, docs, strict=True):
            target = target_of(task, call)
            bar.advance(job)
            plain = doc.call
            metrics = measure(Analysis(call=plain, questionnaire=questionnaire, document=doc)).metrics
            vec = featurizer.vectors_for(doc, metrics)
            vec.target = target
            items.append(vec)
    train, held = hold_out(items, calibration_share, seed, lambda v: v.call_id)
    return ClassifierData(task, featurizer, train, held, labelled_weight)


def classifier_loaders(data: ClassifierData, batch_size: int, seed: int) -> tuple[DataLoader, DataLoader | None]:
    gen = torch.Generator().manual_seed(seed)
    train = DataLoader(
        data.train_items(), batch_size=batch_size, shuffle=True, generator=gen, collate_fn=collate_vectors
    )
    val = DataLoader(data.calibration, batch_size=batch_size, collate_fn=collate_vectors) if data.calibration else None
    return train, val


def tune_thresholds(classifier: TurnClassifier, items: Sequence[CallVectors]) -> dict[str, float]:
    """Per error, the probability threshold with the best F1 on the calibration calls (multi-label only).

    Where several thresholds tie (calibration calls a model separates cleanly), the middle of
    the tied range is kept: the lowest would flag real calls on the slightest evidence.
    """
    cfg = classifier.config
    if not cfg.multi_label or not items:
        return {}
    probs = np.stack([classifier.scores(v)[0] for v in items])
    gold = np.stack([v.target for v in items]) > 0.5
    thresholds, f1s = [], {}
    for i, label in enumerate(cfg.labels):
        taus = np.linspace(0.15, 0.85, 15)
        scores = []
        for tau in taus:
            pred = probs[:, i] >= tau
            tp = float((pred & gold[:, i]).sum())
            denom = pred.sum() + gold[:, i].sum()
            scores.append(2 * tp / denom if denom else 1.0)
        best = max(scores)
        tied = [float(t) for t, f in zip(taus, scores, strict=True) if f >= best - 1e-9]
        thresholds.append(tied[len(tied) // 2])
        f1s[f"calibration_f1_{label}"] = best
    cfg.thresholds = thresholds
    return f1s
