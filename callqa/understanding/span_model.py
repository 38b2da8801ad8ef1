"""The trained answer extractor: a question-conditioned span network over the whole call.

Plain PyTorch (no Lightning), so serving loads it from a directory of two files:
``weights.pt`` (the state dict) and ``model.json`` (sizes, windows, calibration). Training
lives in ``training/answers.py``.

Input per call token: its navec vector, what kind of token it is (speaker, punctuation,
typed mentions: money, dates, companies, roles, dodges; clause tense and question mark),
and per question what the zero-shot extractor knows about it (how well its clause answers
the question, how strongly the agent just asked it, how close the word is to the question's
cue words, whether the rules would answer with it). A BiLSTM reads the call once; each
question, encoded from its own text (so any questionnaire works), gates a second BiLSTM
that scores answer starts and ends. Index 0 of both is "no answer" (SQuAD 2.0 style).
Long calls are read in overlapping windows; a question's answer is its best span over all
windows, kept when it beats "no answer" by the tuned margin; its confidence is the Platt-
calibrated probability that such a margin gives a right answer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch
from pydantic import BaseModel
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from callqa.encoder.runtime import TextEncoder
from callqa.modelfiles import load_net, save_model_dir
from callqa.schemas import Answer, Call, LabelledCall, QuestionKind, Questionnaire, Speaker
from callqa.text.embeddings import WordVectors
from callqa.understanding.answers import ZeroShotAnswerExtractor, content_lemmas
from callqa.understanding.document import CallDocument

WORD_DIM = 300
FEATURE_VERSION = 1
TOKEN_FEATURES = (
    "agent",
    "client",
    "turn_first",
    "turn_last",
    "word",
    "question_mark",
    "punct",
    "capitalized",
    "known",
    "digits",
    "money",
    "time",
    "org",
    "role",
    "number",
    "dodge",
    "clause_question",
    "clause_past",
    "clause_future",
    "clause_first",
    "raw_asr",
    "vendor_pitch",
    "position",
)
PAIR_FEATURES = ("relevance", "typed", "anchor", "asks", "cue", "ask_word", "zero_shot")
# with an encoder: how relevant the token's clause is to the question, and how closely the agent's
# turn before it asks the question, both by the encoder's meaning (``ZeroShotAnswerExtractor.semantic``)
MEANING_FEATURES = ("meaning_clause", "meaning_anchor")
KINDS = tuple(QuestionKind)
QUESTION_DIM = WORD_DIM + len(KINDS) + 2
# The network's inputs and outputs in call order: the names the ONNX export and Triton use.
SPAN_INPUTS = ("words", "feats", "pair", "questions", "lengths", "candidates")
SPAN_OUTPUTS = ("start", "end")


class SpanConfig(BaseModel):
    """What a trained span model needs besides its weights."""

    type: Literal["span"] = "span"
    feature_version: int = FEATURE_VERSION
    encoder: str | None = None
    """The pretrained encoder whose token states are the word vectors (``encoder_id``); None: navec."""
    word_dim: int = WORD_DIM
    question_dim: int = QUESTION_DIM
    pair_dim: int = len(PAIR_FEATURES)
    context: Literal["lstm", "conv"] = "lstm"
    """How the words see their neighbours: a BiLSTM (navec vectors know nothing of their context), or
    two convolutions over states that already do (the encoder's; several times cheaper to train)."""
    hidden: int = 64
    model_hidden: int = 48
    dropout: float = 0.2
    window: int = 320
    stride: int = 160
    max_answer_tokens: int = 48
    threshold: float = 0.0  # margin over "no answer" a span must beat
    calibration: tuple[float, float] = (1.0, 0.0)  # Platt: p = sigmoid(a * margin + b)
    questionnaire: str = ""
    trained_on: dict[str, object] = {}


class SpanNet(nn.Module):
    """Start/end logits per question over one window of call tokens (index 0: no answer)."""

    def __init__(self, cfg: SpanConfig) -> None:
        super().__init__()
        nf, npf = len(TOKEN_FEATURES), cfg.pair_dim
        h, m = cfg.hidden, cfg.model_hidden
        self.drop = nn.Dropout(cfg.dropout)
        self.context = cfg.context
        if cfg.context == "conv":
            self.inp = nn.Linear(cfg.word_dim + nf, 2 * h)
            self.enc = nn.Conv1d(2 * h, 2 * h, kernel_size=3, padding=1)
        else:
            self.inp = nn.Linear(cfg.word_dim + nf, h)
            self.enc = nn.LSTM(h, h, batch_first=True, bidirectional=True)
        self.question = nn.Linear(cfg.question_dim, 2 * h)
        self.fuse = nn.Linear(4 * h + npf, m)
        # per question, local context by two convolutions (a second LSTM per question costs 10x)
        self.conv1 = nn.Conv1d(m, m, kernel_size=5, padding=2)
        self.conv2 = nn.Conv1d(m, m, kernel_size=5, padding=4, dilation=2)
        self.start = nn.Linear(2 * m + npf, 1)
        self.end = nn.Linear(2 * m + npf, 1)
        self.null = nn.Linear(2 * m + npf, 2)

    @staticmethod
    def _run(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = lstm(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]

    def forward(
        self,
        words: torch.Tensor,  # (B, T, word_dim): navec vectors or encoder states
        feats: torch.Tensor,  # (B, T, F)
        pair: torch.Tensor,  # (B, T, Q, P)
        questions: torch.Tensor,  # (Q, question_dim), or (B, Q, ...): one copy per window
        lengths: torch.Tensor,  # (B,)
        candidates: torch.Tensor,  # (B, T) bool: tokens an answer may start or end on
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, _ = words.shape
        q = questions.shape[-2]
        x = torch.relu(self.inp(self.drop(torch.cat([words, feats], -1))))
        if self.context == "conv":
            inside = (torch.arange(t, device=words.device)[None, :] < lengths[:, None]).unsqueeze(-1)
            x = x * inside
            h = self.drop(x + torch.relu(self.enc(x.transpose(1, 2)).transpose(1, 2)) * inside)  # (B, T, 2h)
        else:
            h = self.drop(self._run(self.enc, x, lengths))  # (B, T, 2h)
        qv = torch.tanh(self.question(questions))  # (Q, 2h) or (B, Q, 2h)
        if qv.dim() == 3:  # batched questions (exported models: every input has a batch axis)
            qv = qv.unsqueeze(1)  # (B, 1, Q, 2h)
        hq = h.unsqueeze(2).expand(b, t, q, h.shape[-1])
        fused = torch.relu(self.fuse(torch.cat([hq, hq * qv, pair], -1)))  # (B, T, Q, m)
        valid = (torch.arange(t, device=words.device)[None, :] < lengths[:, None]).repeat_interleave(q, 0)
        fused = fused.permute(0, 2, 3, 1).reshape(b * q, -1, t) * valid[:, None, :]  # (B*Q, m, T)
        c1 = torch.relu(self.conv1(fused)) * valid[:, None, :]
        c2 = torch.relu(self.conv2(c1)) * valid[:, None, :]
        m = self.drop(torch.cat([c1, c2], 1).transpose(1, 2))  # (B*Q, T, 2m)
        pq = pair.permute(0, 2, 1, 3).reshape(b * q, t, -1)
        z = torch.cat([m, pq], -1)  # (B*Q, T, 2m + P)
        pooled = z.masked_fill(~valid[..., None], -1e4).max(1).values
        null = self.null(pooled)  # (B*Q, 2)
        allowed = candidates.repeat_interleave(q, 0)
        start = self.start(z).squeeze(-1).masked_fill(~allowed, -1e4)
        end = self.end(z).squeeze(-1).masked_fill(~allowed, -1e4)
        start = torch.cat([null[:, :1], start], 1).view(b, q, t + 1)
        end = torch.cat([null[:, 1:], end], 1).view(b, q, t + 1)
        return start, end


@dataclass
class CallFeatures:
    """One call turned into arrays (all tokens of all turns, in order)."""

    call_id: str
    turn_of: np.ndarray  # (N,) turn index of each token
    spans: list[tuple[int, int]]  # char span of each token in its turn
    words: np.ndarray  # (N, 300) float16
    feats: np.ndarray  # (N, F) float32
    pair: np.ndarray  # (N, Q, P) float32
    candidates: np.ndarray  # (N,) bool
    gold: list[tuple[int, int] | bool | None]  # per question: token span, None (no answer), False (unlabelled)
    # with an encoder: the call's encoder token ids, and each word's [first, last + 1) encoder tokens
    # (end-to-end fine-tuning runs the encoder again on these and pools its states into words)
    encoder_ids: np.ndarray | None = None
    pieces: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.turn_of)


@dataclass
class Window:
    """A slice of a call's tokens with its gold start/end per question (0 = no answer, -100 = unlabelled)."""

    call: CallFeatures
    lo: int
    hi: int

    def targets(self) -> tuple[list[int], list[int]]:
        starts, ends = [], []
        for g in self.call.gold:
            if g is False:
                starts.append(-100)
                ends.append(-100)
            elif g is None or not (self.lo <= g[0] and g[1] < self.hi):
                starts.append(0)
                ends.append(0)
            else:
                starts.append(g[0] - self.lo + 1)
                ends.append(g[1] - self.lo + 1)
        return starts, ends


def windows(call: CallFeatures, size: int, stride: int) -> list[Window]:
    """Overlapping windows that cover every token (one window for a short call)."""
    n = len(call)
    if n <= size:
        return [Window(call, 0, n)]
    out = []
    lo = 0
    while True:
        hi = min(n, lo + size)
        out.append(Window(call, lo, hi))
        if hi == n:
            return out
        lo += stride


def collate(batch: Sequence[Window], questions: np.ndarray) -> dict[str, torch.Tensor]:
    """Pad windows into one batch of tensors (targets included)."""
    t = max(w.hi - w.lo for w in batch)
    b = len(batch)
    q, npf = questions.shape[0], batch[0].call.pair.shape[2]
    words = np.zeros((b, t, batch[0].call.words.shape[1]), np.float32)
    feats = np.zeros((b, t, len(TOKEN_FEATURES)), np.float32)
    pair = np.zeros((b, t, q, npf), np.float32)
    cand = np.zeros((b, t), bool)
    starts, ends = [], []
    for i, w in enumerate(batch):
        n = w.hi - w.lo
        words[i, :n] = w.call.words[w.lo : w.hi]
        feats[i, :n] = w.call.feats[w.lo : w.hi]
        pair[i, :n] = w.call.pair[w.lo : w.hi]
        cand[i, :n] = w.call.candidates[w.lo : w.hi]
        s, e = w.targets()
        starts.append(s)
        ends.append(e)
    return {
        "words": torch.from_numpy(words),
        "feats": torch.from_numpy(feats),
        "pair": torch.from_numpy(pair),
        "questions": torch.from_numpy(questions),
        "lengths": torch.tensor([w.hi - w.lo for w in batch]),
        "candidates": torch.from_numpy(cand),
        "start": torch.tensor(starts),
        "end": torch.tensor(ends),
    }


def _in_context():
    """The zero-shot weights with the encoder's meaning read from the call's one pass (the trained model's
    features; embedding each sentence on its own would double the encoder's cost per call)."""
    from callqa.understanding.answers import load_zero_shot_config

    config = load_zero_shot_config()
    config.semantic.source = "context"
    return config


class SpanFeaturizer:
    """Calls → arrays for ``SpanNet``; the zero-shot extractor supplies the rule features.

    Word vectors are navec's, or, with an ``encoder``, each word's mean contextual state from one
    encoder pass over the whole call; question vectors are then the encoder's ``query:``
    embeddings of the question text and its paraphrases.
    """

    def __init__(
        self,
        questionnaire: Questionnaire,
        zero_shot: ZeroShotAnswerExtractor | None = None,
        encoder: TextEncoder | None = None,
    ) -> None:
        self.questionnaire = questionnaire
        self.zero_shot = zero_shot or ZeroShotAnswerExtractor(questionnaire, config=_in_context(), encoder=encoder)
        self.vectors: WordVectors = self.zero_shot.vectors
        self.encoder = encoder
        self.word_dim = encoder.hidden if encoder is not None else WORD_DIM
        self.pair_dim = len(PAIR_FEATURES) + (len(MEANING_FEATURES) if encoder is not None else 0)
        self.questions = self._question_vectors()

    def question_variants(self) -> list[np.ndarray]:
        """Per question, its vector as served (first row) and as each of its texts alone (the question,
        each paraphrase): training draws among them, so the network reads what a question asks rather
        than the ten vectors of one questionnaire (a questionnaire with bare texts gives only the second)."""
        if self.encoder is None:
            return [row[None] for row in self.questions]
        out = []
        for profile, served in zip(self.zero_shot.profiles, self.questions, strict=True):
            q = profile.question
            texts = self.encoder.embed([q.text, *q.paraphrases], "query")
            tail = served[self.encoder.hidden :]
            out.append(np.stack([served, *(np.concatenate([t, tail]).astype(np.float32) for t in texts)]))
        return out

    def _question_vectors(self) -> np.ndarray:
        rows = []
        for profile in self.zero_shot.profiles:
            q = profile.question
            if self.encoder is not None:
                mean = self.encoder.embed([q.text, *q.paraphrases], "query").mean(0)
            else:
                vecs = [
                    v
                    for text in [q.text, *q.paraphrases]
                    for lemma in content_lemmas(text, self.zero_shot.lexicon)
                    if (v := self.vectors.vector(lemma)) is not None
                ]
                mean = np.mean(vecs, 0) if vecs else np.zeros(WORD_DIM, np.float32)
            mean = mean / (np.linalg.norm(mean) or 1.0)
            kind = [float(q.kind == k) for k in KINDS]
            orient = [float(profile.orientation == "past"), float(profile.orientation == "future")]
            rows.append(np.concatenate([mean, kind, orient]).astype(np.float32))
        return np.stack(rows)

    def document(self, call: Call) -> CallDocument:
        return CallDocument.build(call, self.zero_shot.lexicon)

    def features(
        self, call: Call, doc: CallDocument | None = None, labelled: LabelledCall | None = None
    ) -> CallFeatures:
        doc = doc or self.document(call)
        encoding = self.encoder.encoding_of(doc) if self.encoder is not None else None
        zs = self.zero_shot
        ev = zs.evidence(doc)
        meaning = self._meaning(doc) if self.encoder is not None else None
        chosen = {a.question_id: a for a in ([] if ev.vendor_pitch else zs.extract(call, doc))}
        nq = len(zs.profiles)
        total = sum(len(t.tokens) for t in doc.turns) or 1
        turn_of, spans, words, feats, pair, cand, pieces = [], [], [], [], [], [], []
        pos = 0
        for turn in doc.turns:
            client = turn.speaker == Speaker.CLIENT
            typed = ev.typed.get(turn.index)
            clause_at = {}
            for ci, clause in enumerate(turn.clauses):
                for k, tok in enumerate(clause.tokens):
                    clause_at[tok.start] = (ci, clause, k == 0)
            mentions = [
                [(m.start, m.end) for m in turn.money],
                [(m.start, m.end) for m in turn.times],
                *([typed.org, typed.role, typed.numbers, typed.dodge] if typed else [[], [], [], []]),
            ]
            pooled = encoding.pool(turn.index, [(t.start, t.end) for t in turn.tokens]) if encoding else None
            rows = self._clause_rows(turn.index, ev, meaning, nq)
            answered = [
                (qi, a)
                for qi, profile in enumerate(zs.profiles)
                if (a := chosen.get(profile.question.id)) is not None and a.turn == turn.index
            ]
            if encoding is not None:
                pieces.extend(encoding.pieces(turn.index, [(t.start, t.end) for t in turn.tokens]))
            for k, tok in enumerate(turn.tokens):
                ci, clause, first = clause_at.get(tok.start, (None, None, False))
                hits = [float(any(s[0] < tok.end and tok.start < s[1] for s in spans_)) for spans_ in mentions]

                f = [
                    float(turn.speaker == Speaker.AGENT),
                    float(client),
                    float(k == 0),
                    float(k == len(turn.tokens) - 1),
                    float(tok.is_word),
                    float("?" in tok.text),
                    float(not tok.is_word and "?" not in tok.text),
                    float(tok.is_capitalized),
                    float(tok.known),
                    float(any(c.isdigit() for c in tok.text)),
                    *hits,  # money, time, org, role, number, dodge
                    float(bool(clause and clause.is_question)),
                    float(bool(clause and clause.tense == "past")),
                    float(bool(clause and clause.tense == "future")),
                    float(first),
                    float(not turn.punctuated),
                    float(ev.vendor_pitch),
                    pos / total,
                ]
                p = rows(ci).copy()
                if tok.is_word:
                    for qi, profile in enumerate(zs.profiles):
                        p[qi, 4] = min(1.0, profile.cues.match(tok.lemma))
                        p[qi, 5] = min(1.0, profile.ask.match(tok.lemma))
                for qi, a in answered:
                    if a.char_start < tok.end and tok.start < a.char_end:
                        p[qi, 6] = 1.0
                if pooled is not None:
                    vec = pooled[k]
                else:
                    vec = self.vectors.vector(tok.norm) if tok.is_word else None
                turn_of.append(turn.index)
                spans.append((tok.start, tok.end))
                words.append(vec if vec is not None else np.zeros(self.word_dim, np.float32))
                feats.append(f)
                pair.append(p)
                cand.append(client and tok.is_word)
                pos += 1
        if not any(cand):  # a transcript with no CLIENT turns: answers may come from anyone
            cand = [bool(f[4]) for f in feats]
        features = CallFeatures(
            call_id=call.call_id,
            turn_of=np.array(turn_of, dtype=np.int32),
            spans=spans,
            words=np.array(words, dtype=np.float16).reshape(-1, self.word_dim),
            feats=np.array(feats, dtype=np.float32).reshape(-1, len(TOKEN_FEATURES)),
            pair=np.array(pair, dtype=np.float32).reshape(-1, nq, self.pair_dim),
            candidates=np.array(cand, dtype=bool),
            gold=[False] * nq,
            encoder_ids=encoding.ids if encoding is not None else None,
            pieces=np.array(pieces, dtype=np.int64).reshape(-1, 2) if encoding is not None else None,
        )
        if labelled is not None:
            features.gold = self.gold(features, labelled)
        return features

    def _clause_rows(self, turn: int, ev, meaning, nq: int):
        """A turn's pair features that do not depend on the token, per clause (None: outside any clause),
        computed once per clause and copied into each of its tokens."""
        cache: dict[int | None, np.ndarray] = {}

        def row(ci: int | None) -> np.ndarray:
            if ci in cache:
                return cache[ci]
            p = np.zeros((nq, self.pair_dim), np.float32)
            if turn in ev.clauses and ci is not None:
                for qi, (rel, has_entity) in enumerate(ev.clauses[turn][ci][:nq]):
                    p[qi, 0] = math.tanh(rel / 2)
                    p[qi, 1] = float(has_entity)
            if turn in ev.anchors:
                p[:, 2] = ev.anchors[turn][:nq]
            if turn in ev.asks:
                p[:, 3] = ev.asks[turn][:nq]
            if meaning is not None:
                clause_scores, anchor_scores = meaning
                if ci is not None and (turn, ci) in clause_scores:
                    p[:, 7] = clause_scores[(turn, ci)]
                p[:, 8] = anchor_scores.get(turn, 0.0)
            cache[ci] = p
            return p

        return row

    def _meaning(self, doc: CallDocument) -> tuple[dict[tuple[int, int], np.ndarray], dict[int, np.ndarray]]:
        """The encoder's clause relevance per (turn, clause), and per turn how closely the agent's turn
        before it (or, a little less, the one before that) asks each question."""
        sem = self.zero_shot.semantic(doc)
        nq = len(self.zero_shot.profiles)
        assert sem is not None
        per_turn: dict[int, np.ndarray] = {}
        for (t, _), row in sem.asks.items():
            per_turn[t] = np.maximum(per_turn.get(t, np.zeros(nq, np.float32)), row)
        decay = self.zero_shot.config.previous_exchange_decay
        anchors: dict[int, np.ndarray] = {}
        for turn in doc.turns:
            k1 = doc.previous_agent_turn(turn.index)
            if k1 is None:
                continue
            value = per_turn.get(k1, np.zeros(nq, np.float32))
            k2 = doc.previous_agent_turn(k1)
            if k2 is not None:
                value = np.maximum(value, decay * per_turn.get(k2, np.zeros(nq, np.float32)))
            anchors[turn.index] = value
        return sem.clauses, anchors

    def gold(self, features: CallFeatures, call: LabelledCall) -> list[tuple[int, int] | bool | None]:
        """Token spans of the gold answers (None: no answer, also for a question the call does not list,
        as the answer metric reads it; False: the span is not in the turn, so it is not trained on)."""
        out: list[tuple[int, int] | bool | None] = []
        for profile in self.zero_shot.profiles:
            g = call.answers.get(profile.question.id)
            if g is None:
                out.append(None)
                continue
            text = call.turns[g.turn].text
            start = text.find(g.text)
            end = start + len(g.text)
            idx = [
                i
                for i, (t, (a, b)) in enumerate(zip(features.turn_of, features.spans, strict=True))
                if t == g.turn and a < end and start < b and features.candidates[i]
            ]
            out.append((idx[0], idx[-1]) if start >= 0 and idx else False)
        return out


def best_spans(
    start: torch.Tensor, end: torch.Tensor, turn_of: torch.Tensor, max_tokens: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per question: the best span's (start, end) token index in the window and its margin over no answer.

    ``start``/``end``: (Q, T + 1) logits of one window; ``turn_of``: (T,) turn of each token.
    """
    s, e = start[:, 1:], end[:, 1:]
    t = s.shape[1]
    i = torch.arange(t)
    ok = (i[None, :] >= i[:, None]) & (i[None, :] - i[:, None] < max_tokens) & (turn_of[:, None] == turn_of[None, :])
    score = s[:, :, None] + e[:, None, :]
    score = score.masked_fill(~ok[None], -1e9)
    flat = score.view(score.shape[0], -1)
    best, arg = flat.max(1)
    margin = best - (start[:, 0] + end[:, 0])
    return arg // t, arg % t, margin


class SpanRunner(Protocol):
    """Turns a ``collate`` batch into (start, end) logits, each (B, Q, T + 1): in process or on a server."""

    def __call__(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]: ...


class TorchSpanRunner:
    """The default runner: the ``SpanNet`` in this process."""

    def __init__(self, net: SpanNet) -> None:
        self.net = net

    @torch.no_grad()
    def __call__(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(*(batch[k] for k in SPAN_INPUTS))


class SpanAnswerExtractor:
    """``AnswerExtractor`` backed by a trained ``SpanNet`` (loads from a model directory).

    ``runner`` computes the logits (default: the net in process; ``serving.triton`` swaps in a
    Triton client); features and decoding stay here either way.
    """

    def __init__(
        self,
        net: SpanNet,
        config: SpanConfig,
        questionnaire: Questionnaire,
        name: str = "span",
        featurizer: SpanFeaturizer | None = None,
        runner: SpanRunner | None = None,
        max_batch_windows: int = 64,
    ) -> None:
        self.net = net.eval()
        self.config = config
        self.questionnaire = questionnaire
        self.name = name
        self.featurizer = featurizer or SpanFeaturizer(questionnaire)
        self.runner: SpanRunner = runner or TorchSpanRunner(self.net)
        self.max_batch_windows = max_batch_windows

    def with_runner(self, runner: SpanRunner, name: str | None = None) -> SpanAnswerExtractor:
        """The same extractor (net, config, featurizer) with its logits computed by ``runner``."""
        return SpanAnswerExtractor(
            self.net,
            self.config,
            self.questionnaire,
            name=name or self.name,
            featurizer=self.featurizer,
            runner=runner,
            max_batch_windows=self.max_batch_windows,
        )

    @classmethod
    def load(cls, path: str | Path, questionnaire: Questionnaire, name: str | None = None) -> SpanAnswerExtractor:
        config, net = load_net(path, SpanConfig, SpanNet, FEATURE_VERSION)
        encoder = None
        if (Path(path) / "encoder" / "config.json").is_file():  # fine-tuned end to end: its own encoder
            from callqa.encoder.store import text_encoder

            encoder = text_encoder(path=Path(path) / "encoder")
        elif config.encoder is not None:
            from callqa.encoder.store import resolve_encoder

            encoder = resolve_encoder(config.encoder)
        featurizer = SpanFeaturizer(questionnaire, encoder=encoder)
        return cls(net, config, questionnaire, name=name or f"span:{Path(path).name}", featurizer=featurizer)

    def save(self, path: str | Path) -> Path:
        return save_model_dir(self.net, self.config, path)

    @torch.no_grad()
    def margins(self, features: CallFeatures) -> list[tuple[float, int, int]]:
        """Per question: (margin over no answer, first token, last token) of its best span in the call."""
        cfg = self.config
        nq = self.featurizer.questions.shape[0]
        best: list[tuple[float, int, int]] = [(-math.inf, -1, -1)] * nq
        if len(features) == 0:
            return best
        for w in windows(features, cfg.window, cfg.stride):
            start, end = self.runner(collate([w], self.featurizer.questions))
            self._keep_best(best, w, start[0], end[0])
        return best

    @torch.no_grad()
    def margins_many(self, features: Sequence[CallFeatures]) -> list[list[tuple[float, int, int]]]:
        """``margins`` of several calls, their windows run together in batches of ``max_batch_windows``."""
        nq = self.featurizer.questions.shape[0]
        best: list[list[tuple[float, int, int]]] = [[(-math.inf, -1, -1)] * nq for _ in features]
        jobs = [
            (i, w) for i, f in enumerate(features) if len(f) for w in windows(f, self.config.window, self.config.stride)
        ]
        for k in range(0, len(jobs), self.max_batch_windows):
            chunk = jobs[k : k + self.max_batch_windows]
            start, end = self.runner(collate([w for _, w in chunk], self.featurizer.questions))
            for j, (i, w) in enumerate(chunk):
                n = w.hi - w.lo  # padded to the longest window of the batch: cut back to this one
                self._keep_best(best[i], w, start[j, :, : n + 1], end[j, :, : n + 1])
        return best

    def _keep_best(self, best: list[tuple[float, int, int]], w: Window, start: torch.Tensor, end: torch.Tensor) -> None:
        turn_of = torch.from_numpy(w.call.turn_of[w.lo : w.hi].astype(np.int64))
        a, b, margin = best_spans(start, end, turn_of, self.config.max_answer_tokens)
        for qi in range(len(best)):
            m = float(margin[qi])
            if m > best[qi][0]:
                best[qi] = (m, w.lo + int(a[qi]), w.lo + int(b[qi]))

    def confidence(self, margin: float) -> float:
        a, b = self.config.calibration
        return 1 / (1 + math.exp(-(a * margin + b)))

    def extract(self, call: Call, document: CallDocument | None = None) -> list[Answer]:
        doc = document or self.featurizer.document(call)
        features = self.featurizer.features(call, doc)
        return self._answers(doc, features, self.margins(features))

    def extract_many(
        self, calls: Sequence[Call], documents: Sequence[CallDocument | None] | None = None
    ) -> list[list[Answer]]:
        """``extract`` for several calls with one forward over all their windows (what a batching server calls)."""
        docs = [
            d or self.featurizer.document(c)
            for c, d in zip(calls, documents if documents is not None else [None] * len(calls), strict=True)
        ]
        if self.featurizer.encoder is not None:  # every call's windows through the encoder together
            self.featurizer.encoder.encode_documents(docs)
        features = [self.featurizer.features(c, d) for c, d in zip(calls, docs, strict=True)]
        return [self._answers(d, f, m) for d, f, m in zip(docs, features, self.margins_many(features), strict=True)]

    def _answers(
        self, doc: CallDocument, features: CallFeatures, margins: list[tuple[float, int, int]]
    ) -> list[Answer]:
        answers = []
        for qi, (margin, a, b) in enumerate(margins):
            if margin <= self.config.threshold or a < 0:
                continue
            turn = int(features.turn_of[a])
            answers.append(
                self.featurizer.zero_shot.span_answer(
                    doc, qi, turn, features.spans[a][0], features.spans[b][1], self.confidence(margin)
                )
            )
        return answers
