"""Trained call classifiers: manager errors (multi-label) and call type (one of eight, spam included).

One plain-PyTorch network serves both (``TurnAttentionNet``): each turn becomes a vector
(navec mean, hashed lemma uni- and bigrams, speaker, position, lexicon hits), a BiGRU reads
the turns in order, and every label attends over the turns on its own. The attended turn is
the label's evidence: a flagged error comes with the quote that triggered it. Call metrics
(talk share, question rate, filler and value-reducing word rates, topics missed,
interruptions...) join each label's logit. Training lives in ``training/classifiers.py``.
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from callqa.encoder.runtime import TextEncoder
from callqa.modelfiles import load_net, save_model_dir
from callqa.schemas import CallMetrics, CallType, CallTypePrediction, ErrorId, ManagerError, Speaker
from callqa.text.embeddings import WordVectors, load_word_vectors
from callqa.text.lexicon import Lexicon
from callqa.text.tokens import morph_analyzer
from callqa.understanding.calltype import has_phrase
from callqa.understanding.document import CallDocument, TurnDoc
from callqa.understanding.metrics import count_phrases, questions_in

FEATURE_VERSION = 3
WORD_DIM = 300
HASH_DIM = 1024
TURN_FLAGS = 13
BASE_METRICS = 16
# one rule cue per error id (``error_cues``), appended to the call metrics
METRIC_FEATURES = BASE_METRICS + len(ErrorId)
# the call-type model: per type a rule cue and, with an encoder, its zero-shot prior (``CallTypePrior``)
CALLTYPE_FEATURES = BASE_METRICS + 2 * len(CallType)
OPENING_TURNS = 6
CUE_PRIOR = 2.0  # initial weight of each error's own cue on its logit
# The default questionnaire's questions about the client's needs: a sales call that asks none misses needs discovery.
NEEDS_TOPICS = frozenset({"planned_equipment", "selection_criteria", "frequent_items"})
QUOTE_CHARS = 240
_CUT = re.compile(r"(?:—|–|-|…|\.\.\.)\s*$")


class ClassifierConfig(BaseModel):
    """What a trained classifier needs besides its weights."""

    type: Literal["errors", "calltype"]
    labels: list[str]
    feature_version: int = FEATURE_VERSION
    encoder: str | None = None
    """The pretrained encoder whose per-turn states are the turn vectors (``encoder_id``); None: navec
    means and hashed lemma n-grams."""
    turn_dim: int = WORD_DIM + HASH_DIM + TURN_FLAGS
    metric_dim: int = METRIC_FEATURES
    """Call-level inputs: the metrics plus one cue per error (errors), or per call type two: its phrase
    cue and its encoder prior (call type, ``CALLTYPE_FEATURES``)."""
    hidden: int = 64
    dropout: float = 0.3
    # training only: the share of calls whose turn-reading path is switched off, so the call-level
    # path (metrics and error cues) must carry the labels alone often enough to learn its weights
    path_drop: float = 0.0
    thresholds: list[float] = []  # per label, for the multi-label error model
    trained_on: dict[str, object] = {}

    @property
    def multi_label(self) -> bool:
        return self.type == "errors"


class TurnAttentionNet(nn.Module):
    """Logits per label and each label's attention over the turns."""

    def __init__(self, cfg: ClassifierConfig) -> None:
        super().__init__()
        n, h = len(cfg.labels), cfg.hidden
        self.drop = nn.Dropout(cfg.dropout)
        self.inp = nn.Linear(cfg.turn_dim, h)
        self.gru = nn.GRU(h, h, batch_first=True, bidirectional=True)
        self.attend = nn.Linear(2 * h, n)  # one attention query per label
        self.label_w = nn.Parameter(torch.randn(n, 2 * h) * 0.05)
        self.metrics = nn.Linear(cfg.metric_dim, n)
        self.bias = nn.Parameter(torch.zeros(n))
        self.path_drop = cfg.path_drop
        cues = cfg.metric_dim - BASE_METRICS
        if cues >= n and cues % n == 0:  # each label starts out trusting its own cue (and prior)
            with torch.no_grad():
                for k in range(cues // n):
                    start = BASE_METRICS + k * n
                    self.metrics.weight[:, start : start + n] += CUE_PRIOR * torch.eye(n)
                self.bias -= CUE_PRIOR / 2

    def forward(
        self, turns: torch.Tensor, metrics: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _b, t, _ = turns.shape
        x = torch.relu(self.inp(self.drop(turns)))
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        h, _ = self.gru(packed)
        h = self.drop(pad_packed_sequence(h, batch_first=True, total_length=t)[0])  # (B, T, 2h)
        valid = torch.arange(t, device=turns.device)[None, :] < lengths[:, None]
        scores = self.attend(h).masked_fill(~valid[..., None], -1e4)  # (B, T, L)
        attn = scores.softmax(1)
        pooled = torch.einsum("btl,btd->bld", attn, h)  # (B, L, 2h)
        read = (pooled * self.label_w).sum(-1)  # (B, L): what the turns say
        if self.training and self.path_drop > 0:
            keep = (torch.rand(read.shape[0], 1, device=read.device) >= self.path_drop).to(read.dtype)
            read = read * keep / (1 - self.path_drop)
        logits = read + self.metrics(metrics) + self.bias
        return logits, attn.transpose(1, 2)  # (B, L), (B, L, T)


@dataclass
class CallVectors:
    """One call as the classifier reads it."""

    call_id: str
    turns: np.ndarray  # (T, WORD_DIM + HASH_DIM + TURN_FLAGS)
    metrics: np.ndarray  # (METRIC_FEATURES,)
    target: np.ndarray | None = None  # multi-hot errors or one-hot call type


def _bucket(token: str) -> int:
    return zlib.crc32(token.encode("utf-8")) % HASH_DIM


def metric_vector(metrics: CallMetrics) -> np.ndarray:
    """Call metrics scaled to about 0..1 (timing ones only when the turns are timed)."""
    covered, missing = len(metrics.topics_covered), len(metrics.topics_missing)
    timing = metrics.timing
    v = [
        metrics.agent_word_share,
        min(1.0, metrics.agent_question_rate),
        min(1.0, metrics.filler_word_rate / 10),
        min(1.0, sum(metrics.filler_words.values()) / 5),
        min(1.0, sum(metrics.value_reducing_words.values()) / 3),
        min(1.0, sum(metrics.strong_words.values()) / 5),
        min(1.0, sum(metrics.bad_words.values()) / 3),
        covered / max(1, covered + missing),
        missing / max(1, covered + missing),
        math.log1p(metrics.agent_turns) / 4,
        math.log1p(metrics.client_turns) / 4,
        math.log1p(metrics.agent_words + metrics.client_words) / 7,
        min(1.0, (timing.interruptions if timing else 0) / 3),
        min(1.0, (timing.agent_longest_monologue if timing else 0) / 60),
        timing.agent_talk_share if timing else metrics.agent_word_share,
        float(timing is not None),
    ]
    return np.array(v, dtype=np.float32)


@functools.lru_cache(maxsize=50_000)
def _first_name(word: str) -> bool:
    """Any reading of the word is a first name ("роман", "вера" too, not only the likeliest one)."""
    return any("Name" in p.tag for p in morph_analyzer().parse(word))


def _names_self(turn: TurnDoc) -> bool:
    """The speaker gives their own first name: "это Кирилл", "меня Денис зовут", "«Мебель-Лидер», Ксения".

    A first name with a patronymic after it, or asked about ("Светлана?"), is the person called.
    """
    toks = turn.tokens
    for i, tok in enumerate(toks):
        if not tok.is_word or not _first_name(tok.norm):
            continue
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if nxt is None or ("Patr" not in nxt.grammemes and "?" not in nxt.text):
            return True
    return any(t.lemma == "звать" for t in toks)


def error_cues(doc: CallDocument, metrics: CallMetrics, lexicon: Lexicon) -> np.ndarray:
    """One rule cue in 0..1 per error id (``ErrorId`` order): what a QA supervisor checks first.

    The network weighs these against everything else it reads; on their own they are the
    supervisor's checklist: did the agent give a name, say fillers or value-reducing phrases,
    cut the client off, ask about needs and the questionnaire, work the client's objections,
    and close on a concrete next step.
    """
    turns = [t for t in doc.turns if t.text.strip()]
    agent = [t for t in turns if t.speaker == Speaker.AGENT]
    cues = dict.fromkeys(ErrorId, 0.0)
    if not agent:
        return np.zeros(len(ErrorId), np.float32)
    opening = agent[0]
    introduced = has_phrase(opening.text, lexicon.self_introduction) or _names_self(opening)
    cues[ErrorId.NO_INTRODUCTION] = float(not introduced)
    cues[ErrorId.FILLER_WORDS] = min(1.0, sum(metrics.filler_words.values()) / 2)
    covered, missing = len(metrics.topics_covered), len(metrics.topics_missing)
    cues[ErrorId.INCOMPLETE_QUALIFICATION] = float(0 < covered + missing > 2 * covered)  # under half asked
    unanswered = 0
    for i, turn in enumerate(turns):
        if turn.speaker != Speaker.CLIENT or not has_phrase(turn.text, lexicon.objections):
            continue
        reply = next((t for t in turns[i + 1 :] if t.speaker == Speaker.AGENT), None)
        if reply is None or has_phrase(reply.text, lexicon.concessions):
            unanswered += 1
    cues[ErrorId.OBJECTION_NOT_HANDLED] = float(unanswered > 0)
    closing = turns[-4:]
    agreed = any(has_phrase(t.text, lexicon.next_step) for t in closing) or any(
        t.times and any(tok.lemma in lexicon.appointment_words for tok in t.tokens) for t in closing
    )
    cues[ErrorId.NO_NEXT_STEP] = float(not agreed)
    cut_off = sum(
        1
        for prev, turn in itertools.pairwise(turns)
        if prev.speaker == Speaker.CLIENT and turn.speaker == Speaker.AGENT and _CUT.search(prev.text)
    )
    timed = metrics.timing.interruptions if metrics.timing else 0
    cues[ErrorId.INTERRUPTION] = float(max(cut_off, timed) > 0)
    cues[ErrorId.VALUE_REDUCING_WORDS] = float(sum(metrics.value_reducing_words.values()) > 0)
    needs = [q for q in (*metrics.topics_covered, *metrics.topics_missing) if q in NEEDS_TOPICS]
    asked_needs = [q for q in metrics.topics_covered if q in NEEDS_TOPICS]
    if needs:
        cues[ErrorId.NO_NEEDS_DISCOVERY] = float(not asked_needs)
    else:  # another questionnaire: how much the agent asks at all
        cues[ErrorId.NO_NEEDS_DISCOVERY] = 1.0 - min(1.0, sum(questions_in(t) for t in agent[1:]) / 3)
    return np.array([cues[e] for e in ErrorId], np.float32)


def call_level_task(config: ClassifierConfig) -> str:
    """Which call-level inputs a model was trained with: call-type cues and priors, or the error cues
    (error models, and call-type models made before the call-type cues existed)."""
    return "calltype" if config.type == "calltype" and config.metric_dim == CALLTYPE_FEATURES else "errors"


class CallTypeProfile(BaseModel):
    """One call type: a description (its encoder prior) and phrases heard in such calls' openings."""

    description: str
    cues: tuple[str, ...]


def load_call_types(path: Path | None = None) -> dict[CallType, CallTypeProfile]:
    """The call types' descriptions and cues (``resources/call_types.yaml``), one per ``CallType``."""
    import yaml

    from callqa.errors import ConfigError
    from callqa.settings import RESOURCES

    path = path or RESOURCES / "call_types.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        found = {CallType(k): CallTypeProfile.model_validate(v) for k, v in raw.items()}
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    missing = [t.value for t in CallType if t not in found]
    if missing:
        raise ConfigError(f"{path}: no entry for {', '.join(missing)}")
    return found


def calltype_cues(doc: CallDocument, profiles: Mapping[CallType, CallTypeProfile]) -> np.ndarray:
    """Per call type (``CallType`` order): 1 when one of its phrases is said in the call's opening."""
    opening = " ".join(t.text for t in doc.turns[:OPENING_TURNS])
    return np.array([float(has_phrase(opening, tuple(profiles[t].cues))) for t in CallType], np.float32)


class CallTypePrior:
    """The encoder's zero-shot view of the call type: how close the call's opening (the mean encoder state
    of its first turns) is to each type's description, relative to the other types."""

    def __init__(self, encoder: TextEncoder, profiles: Mapping[CallType, CallTypeProfile], span: float = 0.04) -> None:
        self.encoder = encoder
        self.descriptions = encoder.embed([profiles[t].description for t in CallType], "query")
        self.span = span

    def __call__(self, doc: CallDocument) -> np.ndarray:
        enc = self.encoder.encoding_of(doc)
        opening = enc.turn_states[: min(OPENING_TURNS, len(enc.turn_states))]
        if not len(opening):
            return np.zeros(len(CallType), np.float32)
        v = opening.mean(0)
        v = v / (np.linalg.norm(v) or 1.0)
        cos = self.descriptions @ v
        return np.clip((cos - np.median(cos)) / self.span, 0.0, 1.5).astype(np.float32)


class TurnFeaturizer:
    """Turns and metrics → arrays for ``TurnAttentionNet``.

    A turn's vector is its navec mean and hashed lemma uni- and bigrams, or, with an ``encoder``,
    the mean contextual state of its tokens from the one encoder pass over the call (what the
    answer model reads too); the turn flags and call-level metrics and cues come with either.
    """

    def __init__(
        self,
        lexicon: Lexicon,
        vectors: WordVectors | None = None,
        encoder: TextEncoder | None = None,
        task: str = "errors",
    ) -> None:
        self.lexicon = lexicon
        self.encoder = encoder
        self.task = task
        self.vectors = vectors or (load_word_vectors() if encoder is None else None)
        self.turn_dim = (encoder.hidden if encoder is not None else WORD_DIM + HASH_DIM) + TURN_FLAGS
        self.call_types = load_call_types() if task == "calltype" else None
        self.prior = CallTypePrior(encoder, self.call_types) if self.call_types and encoder is not None else None
        self.metric_dim = CALLTYPE_FEATURES if task == "calltype" else METRIC_FEATURES

    def _text_vector(self, turn: TurnDoc, words: list) -> np.ndarray:
        assert self.vectors is not None
        vecs = [v for t in words if (v := self.vectors.vector(t.norm)) is not None]
        mean = np.mean(vecs, 0) if vecs else np.zeros(WORD_DIM, np.float32)
        bag = np.zeros(HASH_DIM, np.float32)
        lemmas = [t.lemma for t in words]
        for i, lemma in enumerate(lemmas):
            bag[_bucket(lemma)] += 1
            if i:
                bag[_bucket(f"{lemmas[i - 1]} {lemma}")] += 1
        return np.concatenate([mean, np.log1p(bag)])

    def vectors_for(self, doc: CallDocument, metrics: CallMetrics) -> CallVectors:
        rows = []
        n = max(1, len(doc.turns))
        agent_seen = 0
        cut_before = False
        encoding = self.encoder.encoding_of(doc) if self.encoder is not None else None
        for turn in doc.turns:
            words = [t for t in turn.tokens if t.is_word]
            if encoding is not None:
                text_vec = encoding.turn_states[turn.index]
            else:
                text_vec = self._text_vector(turn, words)
            agent = turn.speaker == Speaker.AGENT
            agent_seen += agent
            text = turn.text
            flags = [
                float(agent),
                float(turn.speaker == Speaker.CLIENT),
                turn.index / n,
                float(turn.index == 0),
                float(agent and agent_seen <= 2),  # the agent's opening
                float(turn.index >= len(doc.turns) - 3),  # the closing
                math.log1p(len(words)) / 4,
                float("?" in text),
                min(1.0, sum(count_phrases(text, self.lexicon.filler_words).values()) / 3),
                float(has_phrase(text, self.lexicon.self_introduction)),
                float(any("Name" in t.grammemes for t in words)),  # a first name: who is speaking
                float(_CUT.search(text) is not None),  # the turn breaks off ("Вам полуавтомат или —")
                float(cut_before),  # ...and this one cut in
            ]
            cut_before = _CUT.search(text) is not None
            rows.append(np.concatenate([text_vec, np.array(flags, np.float32)]))
        if not rows:
            rows.append(np.zeros(self.turn_dim, np.float32))
        if self.call_types is not None:
            prior = self.prior(doc) if self.prior is not None else np.zeros(len(CallType), np.float32)
            cues = np.concatenate([calltype_cues(doc, self.call_types), prior])
        else:
            cues = error_cues(doc, metrics, self.lexicon)
        call_level = np.concatenate([metric_vector(metrics), cues])
        return CallVectors(doc.call.call_id, np.stack(rows).astype(np.float32), call_level)


def collate_vectors(batch: list[CallVectors]) -> dict[str, torch.Tensor]:
    t = max(len(c.turns) for c in batch)
    dim = batch[0].turns.shape[1]
    turns = np.zeros((len(batch), t, dim), np.float32)
    for i, c in enumerate(batch):
        turns[i, : len(c.turns)] = c.turns
    out = {
        "turns": torch.from_numpy(turns),
        "metrics": torch.from_numpy(np.stack([c.metrics for c in batch])),
        "lengths": torch.tensor([len(c.turns) for c in batch]),
    }
    if all(c.target is not None for c in batch):
        out["target"] = torch.from_numpy(np.stack([c.target for c in batch]).astype(np.float32))
    return out


def _quote(doc: CallDocument, turn: int) -> str:
    text = doc.turns[turn].text.strip()
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1].rstrip() + "…"


# A ``collate_vectors`` batch → (logits, attention): the net in process, or a Triton client.
ClassifierRunner = Callable[[Mapping[str, torch.Tensor]], tuple[torch.Tensor, torch.Tensor]]


class TorchClassifierRunner:
    """The default runner: the ``TurnAttentionNet`` in this process."""

    def __init__(self, net: TurnAttentionNet) -> None:
        self.net = net

    @torch.no_grad()
    def __call__(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(batch["turns"], batch["metrics"], batch["lengths"])


class TurnClassifier:
    """A trained error or call-type model, loaded from ``model.json`` + ``weights.pt``."""

    def __init__(
        self,
        net: TurnAttentionNet,
        config: ClassifierConfig,
        lexicon: Lexicon,
        name: str = "classifier",
        runner: ClassifierRunner | None = None,
        featurizer: TurnFeaturizer | None = None,
    ) -> None:
        self.net = net.eval()
        self.config = config
        self.name = name
        self.featurizer = featurizer or TurnFeaturizer(lexicon, task=call_level_task(config))
        self.runner: ClassifierRunner = runner or TorchClassifierRunner(self.net)

    def with_runner(self, runner: ClassifierRunner) -> TurnClassifier:
        """The same classifier (net, config, featurizer) with its logits computed by ``runner``."""
        out = copy.copy(self)
        out.runner = runner
        return out

    @classmethod
    def load(cls, path: str | Path, lexicon: Lexicon, name: str | None = None) -> TurnClassifier:
        config, net = load_net(path, ClassifierConfig, TurnAttentionNet, FEATURE_VERSION)
        encoder = None
        if config.encoder is not None:
            from callqa.encoder.store import resolve_encoder

            encoder = resolve_encoder(config.encoder)
        return cls(
            net,
            config,
            lexicon,
            name=name or f"{config.type}:{Path(path).name}",
            featurizer=TurnFeaturizer(lexicon, encoder=encoder, task=call_level_task(config)),
        )

    def save(self, path: str | Path) -> Path:
        return save_model_dir(self.net, self.config, path)

    @torch.no_grad()
    def scores(self, vectors: CallVectors) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities per label and attention (labels × turns) for one call."""
        logits, attn = self.runner(collate_vectors([vectors]))
        probs = torch.sigmoid(logits) if self.config.multi_label else logits.softmax(-1)
        return probs[0].numpy(), attn[0].numpy()

    def errors(self, doc: CallDocument, metrics: CallMetrics) -> list[ManagerError]:
        """The manager's errors in a call, each with the turn and quote that triggered it."""
        probs, attn = self.scores(self.featurizer.vectors_for(doc, metrics))
        thresholds = self.config.thresholds or [0.5] * len(self.config.labels)
        out = []
        for i, label in enumerate(self.config.labels):
            if probs[i] >= thresholds[i]:
                turn = int(attn[i].argmax())
                out.append(
                    ManagerError(
                        error=ErrorId(label),
                        probability=round(float(probs[i]), 3),
                        turn=turn,
                        quote=_quote(doc, turn),
                    )
                )
        return out

    def call_type(self, doc: CallDocument, metrics: CallMetrics) -> CallTypePrediction:
        probs, attn = self.scores(self.featurizer.vectors_for(doc, metrics))
        i = int(probs.argmax())
        turn = int(attn[i].argmax())
        kind = CallType(self.config.labels[i])
        return CallTypePrediction(
            call_type=kind,
            probability=round(float(probs[i]), 3),
            spam=kind == CallType.SPAM,
            turn=turn,
            quote=_quote(doc, turn),
        )
