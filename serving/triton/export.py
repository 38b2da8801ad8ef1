"""Export the answer network (``SpanNet``) and the turn classifiers (``TurnAttentionNet``) to ONNX.

Every input gets a leading batch axis, as Triton wants: the span model takes its questions
once per window, ``(B, Q, D)``, instead of once per batch. Token, turn and question counts are
dynamic axes. The legacy TorchScript exporter (``dynamo=False``) is used: the dynamo one needs
``onnxscript``, and the legacy one maps packed LSTM/GRU sequences onto ONNX's ``sequence_lens``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel
from torch import nn

from callqa.errors import BadInput
from callqa.modelfiles import CONFIG_FILE
from callqa.understanding.classifiers import METRIC_FEATURES, ClassifierConfig, TurnAttentionNet
from callqa.understanding.span_model import SPAN_INPUTS, SPAN_OUTPUTS, TOKEN_FEATURES, SpanConfig, SpanNet

ONNX_FILE = "model.onnx"
OPSET = 17
CLASSIFIER_INPUTS = ("turns", "metrics", "lengths")
CLASSIFIER_OUTPUTS = ("logits", "attention")


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of an exported model; ``dims`` leave out the batch axis (-1: dynamic)."""

    name: str
    dtype: str  # numpy dtype name: float32, int64, bool
    dims: tuple[int, ...]
    reshape: tuple[int, ...] | None = None  # what the model sees when it differs from ``dims``


@dataclass(frozen=True)
class ExportedModel:
    """An ONNX file, the model config beside it, and its tensor signature."""

    onnx: Path
    config: Path
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


def span_signature(config: SpanConfig | None = None) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Inputs and outputs of the exported span network (names as in ``SPAN_INPUTS``/``SPAN_OUTPUTS``)."""
    cfg = config or SpanConfig()
    dims = {
        "words": ("float32", (-1, cfg.word_dim)),
        "feats": ("float32", (-1, len(TOKEN_FEATURES))),
        "pair": ("float32", (-1, -1, cfg.pair_dim)),
        "questions": ("float32", (-1, cfg.question_dim)),
        "lengths": ("int64", (1,), ()),  # Triton has no scalar per item: sent as (B, 1), read as (B,)
        "candidates": ("bool", (-1,)),
    }
    inputs = tuple(TensorSpec(n, *dims[n]) for n in SPAN_INPUTS)
    outputs = tuple(TensorSpec(n, "float32", (-1, -1)) for n in SPAN_OUTPUTS)  # (Q, T + 1)
    return inputs, outputs


def classifier_signature(
    config: ClassifierConfig | None = None,
) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Inputs and outputs of an exported turn classifier."""
    turn_dim = config.turn_dim if config is not None else ClassifierConfig(type="errors", labels=[]).turn_dim
    inputs = (
        TensorSpec("turns", "float32", (-1, turn_dim)),
        TensorSpec("metrics", "float32", (config.metric_dim if config is not None else METRIC_FEATURES,)),
        TensorSpec("lengths", "int64", (1,), ()),
    )
    outputs = (TensorSpec("logits", "float32", (-1,)), TensorSpec("attention", "float32", (-1, -1)))
    return inputs, outputs


def span_example(
    batch: int = 2, tokens: int = 12, questions: int = 3, seed: int = 0, config: SpanConfig | None = None
) -> dict[str, np.ndarray]:
    """Random inputs of the exported span network (lengths of ``tokens`` and shorter)."""
    cfg = config or SpanConfig()
    rng = np.random.default_rng(seed)
    lengths = np.maximum(1, tokens - np.arange(batch) * 3).astype(np.int64)
    return {
        "words": rng.standard_normal((batch, tokens, cfg.word_dim), dtype=np.float32),
        "feats": rng.random((batch, tokens, len(TOKEN_FEATURES)), dtype=np.float32),
        "pair": rng.random((batch, tokens, questions, cfg.pair_dim), dtype=np.float32),
        "questions": np.repeat(rng.standard_normal((1, questions, cfg.question_dim), dtype=np.float32), batch, 0),
        "lengths": lengths,
        "candidates": rng.random((batch, tokens)) < 0.6,
    }


def classifier_example(
    batch: int = 2, turns: int = 6, seed: int = 0, config: ClassifierConfig | None = None
) -> dict[str, np.ndarray]:
    """Random inputs of an exported turn classifier."""
    rng = np.random.default_rng(seed)
    turn_dim = config.turn_dim if config is not None else ClassifierConfig(type="errors", labels=[]).turn_dim
    return {
        "turns": rng.random((batch, turns, turn_dim), dtype=np.float32),
        "metrics": rng.random((batch, config.metric_dim if config is not None else METRIC_FEATURES), dtype=np.float32),
        "lengths": np.maximum(1, turns - np.arange(batch) * 2).astype(np.int64),
    }


def export_onnx(net: nn.Module, config: BaseModel, out_dir: str | Path) -> ExportedModel:
    """Write ``model.onnx`` and ``model.json`` (the model's config) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(net, SpanNet) and isinstance(config, SpanConfig):
        (inputs, outputs), example = span_signature(config), span_example(config=config)
        axes = {"words": {1: "tokens"}, "feats": {1: "tokens"}, "pair": {1: "tokens", 2: "questions"}}
        axes |= {"questions": {1: "questions"}, "candidates": {1: "tokens"}}
        axes |= {n: {1: "questions", 2: "tokens_1"} for n in SPAN_OUTPUTS}
    elif isinstance(net, TurnAttentionNet) and isinstance(config, ClassifierConfig):
        (inputs, outputs), example = classifier_signature(config), classifier_example(config=config)
        axes = {"turns": {1: "turns"}, "attention": {2: "turns"}}
    else:
        raise BadInput(f"no ONNX export for a {type(net).__name__} with a {type(config).__name__}")
    for spec in (*inputs, *outputs):
        axes.setdefault(spec.name, {})[0] = "batch"
    args = tuple(torch.from_numpy(example[s.name]) for s in inputs)
    path = out / ONNX_FILE
    was_training = net.training
    net.eval()
    try:
        with warnings.catch_warnings():
            # Tracer warnings about the packed LSTM/GRU's batch and length checks do not apply: packed
            # sequences are exported with their lengths, and the parity tests vary batch and length.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net,
                args,
                str(path),
                dynamo=False,
                input_names=[s.name for s in inputs],
                output_names=[s.name for s in outputs],
                dynamic_axes=axes,
                opset_version=OPSET,
            )
    finally:
        net.train(was_training)
    config_path = out / CONFIG_FILE
    config_path.write_text(json.dumps(config.model_dump(mode="json"), indent=2), encoding="utf-8")
    return ExportedModel(path, config_path, inputs, outputs)


def run_onnx(path: str | Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run an exported model with onnxruntime on CPU (parity checks, benchmarks)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    feed = {i.name: inputs[i.name] for i in session.get_inputs()}
    return dict(zip(names, session.run(names, feed), strict=True))
