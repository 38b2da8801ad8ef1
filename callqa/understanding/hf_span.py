"""Answer extraction with any HuggingFace extractive-QA checkpoint (``AutoModelForQuestionAnswering``).

For GPU boxes with a Russian BERT: the call is rendered as one context ("Менеджер: …" /
"Клиент: …" lines), every question of the questionnaire is paired with it, long calls are
cut into overlapping token windows, and all (question, window) pairs of a call run as one
batch. A question's answer is its best span inside a client turn over all windows, kept when
it beats the "no answer" score ([CLS]) by the tuned margin. The checkpoint directory holds the
usual HuggingFace files plus our ``model.json`` (type ``hf_span``, windows, threshold,
calibration); nothing is downloaded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel

from callqa.encoder.runtime import render
from callqa.errors import ModelNotFound
from callqa.modelfiles import CONFIG_FILE
from callqa.schemas import Answer, Call, Questionnaire, Speaker
from callqa.understanding.answers import ZeroShotAnswerExtractor
from callqa.understanding.document import CallDocument


class HFSpanConfig(BaseModel):
    type: Literal["hf_span"] = "hf_span"
    max_length: int = 256
    stride: int = 64
    max_answer_tokens: int = 48
    threshold: float = 0.0
    calibration: tuple[float, float] = (1.0, 0.0)
    trained_on: dict[str, object] = {}


def render_context(call: Call) -> tuple[str, list[tuple[int, int, int]]]:
    """The call as one text, and (turn, start, end) of each turn's own words in it (as the encoder reads it)."""
    return render(call)


def encode(tokenizer, questions: list[str], context: str | list[str], cfg: HFSpanConfig):
    """Tokenised (question, context window) pairs for every question, with offsets (one context for all
    questions, or one context per question)."""
    contexts = [context] * len(questions) if isinstance(context, str) else context
    return tokenizer(
        questions,
        contexts,
        truncation="only_second",
        max_length=cfg.max_length,
        stride=cfg.stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length",
        return_tensors="pt",
    )


class HFSpanAnswerExtractor:
    def __init__(
        self,
        model,
        tokenizer,
        config: HFSpanConfig,
        questionnaire: Questionnaire,
        name: str = "hf",
        max_batch_windows: int = 64,
    ) -> None:
        self.model = model.eval()
        self.max_batch_windows = max_batch_windows
        self.tokenizer = tokenizer
        self.config = config
        self.questionnaire = questionnaire
        self.name = name
        self.zero_shot = ZeroShotAnswerExtractor(questionnaire)

    @classmethod
    def load(cls, path: str | Path, questionnaire: Questionnaire, name: str | None = None) -> HFSpanAnswerExtractor:
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer

        path = Path(path)
        if not (path / CONFIG_FILE).is_file() or not (path / "config.json").is_file():
            raise ModelNotFound(f"{path}: not a HuggingFace QA checkpoint with {CONFIG_FILE}")
        config = HFSpanConfig.model_validate_json((path / CONFIG_FILE).read_text(encoding="utf-8"))
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModelForQuestionAnswering.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelNotFound(f"{path}: cannot load the checkpoint ({exc})") from exc
        return cls(model, tokenizer, config, questionnaire, name=name or f"hf:{path.name}")

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        (path / CONFIG_FILE).write_text(self.config.model_dump_json(indent=2), encoding="utf-8")
        return path

    def spans(self, call: Call) -> list[tuple[float, int, int, int]]:
        """Per question: (margin over no answer, turn, char start, char end in the turn); turn -1: none."""
        return self.spans_many([call])[0]

    @torch.no_grad()
    def spans_many(self, calls: Sequence[Call]) -> list[list[tuple[float, int, int, int]]]:
        """``spans`` of several calls: every (question, window) pair of all of them in one tokenizer call,
        the windows run through the model ``max_batch_windows`` at a time (one forward for a typical batch)."""
        questions = [q.text for q in self.questionnaire.questions]
        nq = len(questions)
        best = [[(-math.inf, -1, 0, 0)] * nq for _ in calls]
        if not calls or not nq:
            return best
        rendered = [render_context(call) for call in calls]
        enc = encode(self.tokenizer, questions * len(calls), [c for c, _ in rendered for _ in questions], self.config)
        offsets = enc.pop("offset_mapping").numpy()
        owner = enc.pop("overflow_to_sample_mapping").numpy()
        # each token's client turn (-1: question, special, padding or an agent's words): answers are client words
        turn_of = np.full(offsets.shape[:2], -1, dtype=np.int64)
        for w in range(offsets.shape[0]):
            ci = int(owner[w]) // nq
            client = [(t, a, b) for t, a, b in rendered[ci][1] if calls[ci].turns[t].speaker != Speaker.AGENT]
            if not client:
                continue
            t_idx = np.array([t for t, _, _ in client])
            t_start = np.array([a for _, a, _ in client])
            t_end = np.array([b for _, _, b in client])
            a, b = offsets[w, :, 0], offsets[w, :, 1]
            k = np.searchsorted(t_start, a, side="right") - 1  # turns are in text order and never overlap
            kk = np.clip(k, 0, None)
            seq = np.array([sid == 1 for sid in enc.sequence_ids(w)])
            hit = seq & (b > a) & (k >= 0) & (b <= t_end[kk])
            turn_of[w] = np.where(hit, t_idx[kk], -1)
        inputs = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        n = offsets.shape[1]
        i = torch.arange(n)
        span_ok = (i[None, :] >= i[:, None]) & (i[None, :] - i[:, None] < self.config.max_answer_tokens)
        for lo in range(0, offsets.shape[0], self.max_batch_windows):
            hi = min(lo + self.max_batch_windows, offsets.shape[0])
            out = self.model(**{k: v[lo:hi] for k, v in inputs.items()})
            turns = torch.from_numpy(turn_of[lo:hi])
            ok = turns >= 0
            null = out.start_logits[:, 0] + out.end_logits[:, 0]
            s = out.start_logits.masked_fill(~ok, -1e9)
            e = out.end_logits.masked_fill(~ok, -1e9)
            valid = span_ok[None] & (turns[:, :, None] == turns[:, None, :])
            score = (s[:, :, None] + e[:, None, :]).masked_fill(~valid, -1e9).view(hi - lo, -1)
            top, flat = score.max(dim=1)
            for j in range(hi - lo):
                w = lo + j
                if not bool(ok[j].any()):
                    continue
                a, b = divmod(int(flat[j]), n)
                margin = float(top[j]) - float(null[j])
                ci, qi = divmod(int(owner[w]), nq)
                t = int(turn_of[w, a])
                if margin > best[ci][qi][0] and t >= 0:
                    base = next(s0 for tt, s0, _ in rendered[ci][1] if tt == t)
                    best[ci][qi] = (margin, t, int(offsets[w, a, 0]) - base, int(offsets[w, b, 1]) - base)
        return best

    def confidence(self, margin: float) -> float:
        a, b = self.config.calibration
        return 1 / (1 + math.exp(-(a * margin + b)))

    def extract(self, call: Call, document: CallDocument | None = None) -> list[Answer]:
        return self.extract_many([call], [document])[0]

    def extract_many(
        self, calls: Sequence[Call], documents: Sequence[CallDocument | None] | None = None
    ) -> list[list[Answer]]:
        """``extract`` for several calls, all their (question, window) pairs batched (what a batching server calls)."""
        docs = documents if documents is not None else [None] * len(calls)
        results = []
        for call, given, spans in zip(calls, docs, self.spans_many(calls), strict=True):
            doc = given or CallDocument.build(call, self.zero_shot.lexicon)
            answers = []
            for qi, (margin, turn, start, end) in enumerate(spans):
                if turn < 0 or margin <= self.config.threshold or end <= start:
                    continue
                answers.append(self.zero_shot.span_answer(doc, qi, turn, start, end, self.confidence(margin)))
            results.append(answers)
        return results
