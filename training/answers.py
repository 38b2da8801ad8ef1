"""Fine-tune the span answer extractor (``callqa.understanding.span_model``) with Lightning.

Training data: synthetic calls from the generator plus any labelled calls given; labelled
(real) calls are repeated ``labelled_weight`` times per epoch because they are few and they
are what the model must get right. A slice of the calls (by call id) is held out to pick the
answer threshold and to calibrate confidence (Platt scaling on the margin over "no answer").
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from callqa.encoder.runtime import TextEncoder
from callqa.encoder.store import EncodingCache, attach_encodings
from callqa.progress import progress
from callqa.schemas import LabelledCall, Questionnaire
from callqa.synthetic import is_synthetic
from callqa.synthetic.asr import render_asr
from callqa.understanding.document import CallDocument
from callqa.understanding.span_model import (
    CallFeatures,
    SpanAnswerExtractor,
    SpanConfig,
    SpanFeaturizer,
    SpanNet,
    Window,
    collate,
    windows,
)
from training.fit import hold_out, repeat_labelled
from training.span_style import SpanStyle, restyle


class SpanModule(pl.LightningModule):
    """``SpanNet`` + its loss and optimiser; the network itself is what gets saved and served."""

    def __init__(
        self,
        config: SpanConfig,
        questions: np.ndarray,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        ema_decay: float = 0.0,
    ):
        super().__init__()
        self.config = config
        self.net = SpanNet(config)
        self.register_buffer("questions", torch.from_numpy(questions), persistent=False)
        self.lr = lr
        self.weight_decay = weight_decay
        self.loss = nn.CrossEntropyLoss(ignore_index=-100)
        # Polyak averaging of the weights; ``use_average`` puts the average in the net after the fit. A
        # registered submodule, so its weights travel in checkpoints (Ray Train hands back a state dict).
        self.ema: torch.optim.swa_utils.AveragedModel | None = None
        if ema_decay > 0:
            avg = torch.optim.swa_utils.get_ema_multi_avg_fn(ema_decay)
            self.ema = torch.optim.swa_utils.AveragedModel(self.net, multi_avg_fn=avg, use_buffers=True)
            self.ema.requires_grad_(False)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.net)

    def use_average(self) -> None:
        """Keep the averaged weights (no-op without averaging, or before any step)."""
        if self.ema is not None and int(self.ema.n_averaged) > 0:
            self.net.load_state_dict(self.ema.module.state_dict())

    def _loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        start, end = self.net(
            batch["words"], batch["feats"], batch["pair"], batch["questions"], batch["lengths"], batch["candidates"]
        )
        flat_s, flat_e = start.flatten(0, 1), end.flatten(0, 1)
        loss = self.loss(flat_s, batch["start"].flatten()) + self.loss(flat_e, batch["end"].flatten())
        return loss, start, end

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, _, _ = self._loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(batch["lengths"]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, start, end = self._loss(batch)
        n = len(batch["lengths"])
        self.log("val_loss", loss, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        labelled = batch["start"] != -100
        null_pred = (start[..., 0] + end[..., 0]) >= (start[..., 1:].max(-1).values + end[..., 1:].max(-1).values)
        null_gold = batch["start"] == 0
        agree = ((null_pred == null_gold) & labelled).sum() / labelled.sum().clamp(min=1)
        self.log("val_null_accuracy", agree, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=self.weight_decay)


@dataclass
class SpanData:
    """Featurised calls, split into training and calibration calls."""

    featurizer: SpanFeaturizer
    train: list[CallFeatures]
    calibration: list[CallFeatures]
    train_calls: list[LabelledCall]
    calibration_calls: list[LabelledCall]
    labelled_weight: int
    variants: dict[str, list[CallFeatures]] = field(default_factory=dict)  # call id → its augmented renderings
    style: SpanStyle | None = None  # the labelled calls' span convention the synthetic ones were given

    def train_windows(self, config: SpanConfig) -> list[Window]:
        """Synthetic calls once; each labelled call ``labelled_weight`` times, cycling through its renderings."""
        seen: Counter[str] = Counter()
        calls = []
        for f in repeat_labelled(self.train, self.labelled_weight, lambda f: f.call_id):
            forms = [f, *self.variants.get(f.call_id, [])]
            calls.append(forms[seen[f.call_id] % len(forms)])
            seen[f.call_id] += 1
        return [w for f in calls for w in windows(f, config.window, config.stride)]

    def val_windows(self, config: SpanConfig) -> list[Window]:
        return [w for f in self.calibration for w in windows(f, config.window, config.stride)]


def prepare(
    calls: Sequence[LabelledCall],
    questionnaire: Questionnaire,
    calibration_share: float = 0.12,
    labelled_weight: int = 4,
    seed: int = 0,
    show_progress: bool = True,
    span_style: bool = True,
    encoder: TextEncoder | None = None,
    encodings: EncodingCache | None = None,
) -> SpanData:
    """Featurise ``calls`` and hold out a calibration slice (stable by call id and seed).

    ``span_style``: synthetic answers are widened to their whole turn as often as the labelled
    calls' answers of the same question are (``training.span_style``). ``encoder``: word vectors
    are its token states (``encodings``: where they are cached between runs).
    """
    featurizer = SpanFeaturizer(questionnaire, encoder=encoder)
    synthetic = [c for c in calls if is_synthetic(c.call_id)]
    style = None
    if span_style:
        style = SpanStyle.measure([c for c in calls if not is_synthetic(c.call_id)], synthetic)
        restyled = {c.call_id: c for c in restyle(synthetic, style, seed)}
        calls = [restyled.get(c.call_id, c) for c in calls]
        synthetic = list(restyled.values())
    # the calibration slice comes from the synthetic calls when there are any: labelled calls are few, all train
    pool = synthetic or list(calls)
    _, cal_calls = hold_out(pool, calibration_share * len(calls) / max(1, len(pool)), seed, lambda c: c.call_id)
    held = {c.call_id for c in cal_calls}
    train_calls = [c for c in calls if c.call_id not in held]
    order = [*cal_calls, *train_calls]
    augment = {c.call_id: v for c in train_calls if not is_synthetic(c.call_id) and (v := renderings(c, questionnaire))}
    feats: dict[str, CallFeatures] = {}
    variants: dict[str, list[CallFeatures]] = {}
    everything = [x for c in order for x in (c, *augment.get(c.call_id, []))]
    docs = encode_calls(everything, featurizer, encodings, show_progress)
    with progress(show_progress) as bar:
        task = bar.add_task("featurising calls", total=len(everything))
        for c in order:
            feats[c.call_id] = featurizer.features(c.to_call(), docs[c.call_id], labelled=c)
            bar.advance(task)
            for v in augment.get(c.call_id, []):
                variants.setdefault(c.call_id, []).append(featurizer.features(v.to_call(), docs[v.call_id], labelled=v))
                bar.advance(task)
    return SpanData(
        featurizer=featurizer,
        train=[feats[c.call_id] for c in train_calls],
        calibration=[feats[c.call_id] for c in cal_calls],
        train_calls=train_calls,
        calibration_calls=cal_calls,
        labelled_weight=labelled_weight,
        variants=variants,
        style=style,
    )


def encode_calls(
    calls: Sequence[LabelledCall],
    featurizer: SpanFeaturizer,
    encodings: EncodingCache | None = None,
    show_progress: bool = True,
) -> dict[str, CallDocument]:
    """Prepared documents by call id, with their encoder states when the featurizer has an encoder
    (through ``encodings``, the on-disk cache, when given)."""
    docs = {c.call_id: featurizer.document(c.to_call()) for c in calls}
    if featurizer.encoder is not None:
        attach_encodings(list(docs.values()), featurizer.encoder, encodings, show_progress)
    return docs


def renderings(call: LabelledCall, questionnaire: Questionnaire) -> list[LabelledCall]:
    """Other forms of a labelled call to train on: its raw-ASR rendering when it is punctuated text.

    A third of real transcripts come without case, punctuation or digits; a punctuated labelled
    call teaches the model that form too, with the same answers re-rendered in place.
    """
    if not any(ch.isupper() or ch in ".,?!" for t in call.turns for ch in t.text):
        return []
    raw = render_asr(call, questionnaire)
    return [raw.model_copy(update={"call_id": f"{call.call_id}~asr"})]


def loaders(
    data: SpanData, config: SpanConfig, batch_size: int, seed: int, vary_questions: bool = False
) -> tuple[DataLoader, DataLoader | None]:
    """Training and calibration batches. ``vary_questions``: each training batch reads every question as
    one of its texts drawn at random (``SpanFeaturizer.question_variants``), the served vector half the time."""
    questions = data.featurizer.questions
    gen = torch.Generator().manual_seed(seed)
    variants = data.featurizer.question_variants() if vary_questions else None
    rng = np.random.default_rng(seed)

    def train_questions() -> np.ndarray:
        if variants is None:
            return questions
        return np.stack([v[0] if rng.random() < 0.5 else v[rng.integers(len(v))] for v in variants])

    train = DataLoader(
        data.train_windows(config),
        batch_size=batch_size,
        shuffle=True,
        generator=gen,
        collate_fn=lambda b: collate(b, train_questions()),
    )
    val_w = data.val_windows(config)
    val = DataLoader(val_w, batch_size=batch_size, collate_fn=lambda b: collate(b, questions)) if val_w else None
    return train, val


def _token_f1(pred: tuple[int, int], gold: tuple[int, int]) -> float:
    overlap = max(0, min(pred[1], gold[1]) - max(pred[0], gold[0]) + 1)
    if overlap == 0:
        return 0.0
    p = overlap / (pred[1] - pred[0] + 1)
    r = overlap / (gold[1] - gold[0] + 1)
    return 2 * p * r / (p + r)


def calibrate(
    extractor: SpanAnswerExtractor, calls: Sequence[CallFeatures], tune_threshold: bool = True
) -> dict[str, float]:
    """Pick the answer threshold (best span F1 on the calibration calls) and fit Platt scaling.

    A span counts as right when it overlaps the gold span with token F1 ≥ 0.5, as the answer
    metric does. Returns the calibration metrics (expected calibration error before/after).
    ``tune_threshold=False`` keeps the network's own decision (a span beats "no answer" at margin
    0): the calibration calls are synthetic, and a threshold tuned on them swung from -3.3 to +1.4
    between the two dev folds and lost 0.01-0.03 answer F1 on real calls against margin 0.
    """
    margins, right, golds = [], [], 0
    for f in calls:
        for qi, (m, a, b) in enumerate(extractor.margins(f)):
            g = f.gold[qi]
            if g is False or a < 0:
                continue
            golds += g is not None
            margins.append(m)
            right.append(g is not None and _token_f1((a, b), g) >= 0.5)
    if not margins:
        return {}
    m = np.array(margins)
    y = np.array(right, dtype=float)
    best_f1, best_tau = -1.0, 0.0
    for tau in sorted({0.0, *np.quantile(m, np.linspace(0.05, 0.95, 37)).tolist()}):
        kept = m > tau
        tp = float((y * kept).sum())
        p = tp / max(1, kept.sum())
        r = tp / max(1, golds)
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        if f1 > best_f1 + 1e-9:
            best_f1, best_tau = f1, float(tau)
    before = _ece(1 / (1 + np.exp(-m)), y)
    a, b = platt(m, y)
    if tune_threshold:
        extractor.config.threshold = best_tau
    extractor.config.calibration = (a, b)
    after = _ece(1 / (1 + np.exp(-(a * m + b))), y)
    return {
        "calibration_span_f1": best_f1,
        "threshold": extractor.config.threshold,
        "tuned_threshold": best_tau,
        "ece_before": before,
        "ece_after": after,
    }


def platt(margin: np.ndarray, right: np.ndarray) -> tuple[float, float]:
    """Logistic regression of right/wrong on the margin (sklearn, lightly regularised)."""
    from sklearn.linear_model import LogisticRegression

    if right.min() == right.max():
        return 1.0, 0.0
    lr = LogisticRegression(C=10.0).fit(margin.reshape(-1, 1), right.astype(int))
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def _ece(prob: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        sel = (prob >= lo) & (prob < hi if hi < 1 else prob <= hi)
        if sel.any():
            total += sel.mean() * abs(prob[sel].mean() - right[sel].mean())
    return float(total)


def steps_per_epoch(n_windows: int, batch_size: int) -> int:
    return max(1, math.ceil(n_windows / batch_size))
