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
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel

from callqa.errors import ModelNotFound
from callqa.modelfiles import CONFIG_FILE
from callqa.schemas import Answer, Call, Questionnaire, Speaker
from callqa.understanding.answers import ZeroShotAnswerExtractor
from callqa.understanding.document import CallDocument

SPEAKER_PREFIX = {Speaker.AGENT: "Менеджер: ", Speaker.CLIENT: "Клиент: "}


class HFSpanConfig(BaseModel):
    type: Literal["hf_span"] = "hf_span"
    max_length: int = 256
    stride: int = 64
    max_answer_tokens: int = 48
    threshold: float = 0.0
    calibration: tuple[float, float] = (1.0, 0.0)
    trained_on: dict[str, object] = {}


def render_context(call: Call) -> tuple[str, list[tuple[int, int, int]]]:
    """The call as one text, and (turn, start, end) of each turn's own words in it."""
    parts, spans, pos = [], [], 0
    for i, turn in enumerate(call.turns):
        prefix = SPEAKER_PREFIX.get(turn.speaker, "")
        start = pos + len(prefix)
        parts.append(prefix + turn.text)
        spans.append((i, start, start + len(turn.text)))
        pos = start + len(turn.text) + 1
    return "\n".join(parts), spans


def encode(tokenizer, questions: list[str], context: str, cfg: HFSpanConfig):
    """Tokenised (question, context window) pairs for every question, with offsets."""
    return tokenizer(
        questions,
        [context] * len(questions),
        truncation="only_second",
        max_length=cfg.max_length,
        stride=cfg.stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length",
        return_tensors="pt",
    )


class HFSpanAnswerExtractor:
    def __init__(self, model, tokenizer, config: HFSpanConfig, questionnaire: Questionnaire, name: str = "hf") -> None:
        self.model = model.eval()
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

    @torch.no_grad()
    def spans(self, call: Call) -> list[tuple[float, int, int, int]]:
        """Per question: (margin over no answer, turn, char start, char end in the turn); turn -1: none."""
        context, turn_spans = render_context(call)
        questions = [q.text for q in self.questionnaire.questions]
        enc = encode(self.tokenizer, questions, context, self.config)
        offsets = enc.pop("offset_mapping")
        owner = enc.pop("overflow_to_sample_mapping")
        out = self.model(**{k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")})
        client = [(t, a, b) for t, a, b in turn_spans if call.turns[t].speaker != Speaker.AGENT]
        best = [(-math.inf, -1, 0, 0)] * len(questions)
        for w in range(enc["input_ids"].shape[0]):
            seq = enc.sequence_ids(w)
            q = int(owner[w])
            turn_of = []
            for i, sid in enumerate(seq):
                a, b = int(offsets[w, i, 0]), int(offsets[w, i, 1])
                hit = next((t for t, s, e in client if s <= a and b <= e), None) if sid == 1 and b > a else None
                turn_of.append(-1 if hit is None else hit)
            s_log, e_log = out.start_logits[w], out.end_logits[w]
            null = float(s_log[0] + e_log[0])
            ok = torch.tensor([t >= 0 for t in turn_of])
            if not ok.any():
                continue
            s = s_log.masked_fill(~ok, -1e9)
            e = e_log.masked_fill(~ok, -1e9)
            n = len(turn_of)
            turns = torch.tensor(turn_of)
            i = torch.arange(n)
            valid = (
                (i[None, :] >= i[:, None])
                & (i[None, :] - i[:, None] < self.config.max_answer_tokens)
                & (turns[:, None] == turns[None, :])
            )
            score = (s[:, None] + e[None, :]).masked_fill(~valid, -1e9)
            flat = int(score.argmax())
            a, b = divmod(flat, n)
            margin = float(score.view(-1)[flat]) - null
            if margin > best[q][0] and turn_of[a] >= 0:
                t = turn_of[a]
                base = next(s0 for tt, s0, _ in turn_spans if tt == t)
                best[q] = (margin, t, int(offsets[w, a, 0]) - base, int(offsets[w, b, 1]) - base)
        return best

    def confidence(self, margin: float) -> float:
        a, b = self.config.calibration
        return 1 / (1 + math.exp(-(a * margin + b)))

    def extract(self, call: Call, document: CallDocument | None = None) -> list[Answer]:
        doc = document or CallDocument.build(call, self.zero_shot.lexicon)
        answers = []
        for qi, (margin, turn, start, end) in enumerate(self.spans(call)):
            if turn < 0 or margin <= self.config.threshold or end <= start:
                continue
            answers.append(self.zero_shot.span_answer(doc, qi, turn, start, end, self.confidence(margin)))
        return answers
