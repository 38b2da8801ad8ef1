"""Synthetic call audio with exact ground truth, spoken by espeak-ng.

Each speaker gets a distinct espeak voice (variant, pitch, rate); turns are laid on a
timeline with natural pauses, interruptions where the transcript shows one ("…я —") and
some short overlaps at speaker changes. The truth is exact because we place every sample:
turn times, RTTM speech segments (split at pauses inside a turn) and the reference text.
Variants: 16 kHz PCM with light noise, or telephone band (300–3400 Hz, 8 kHz, μ-law, line
noise); mono mix, or stereo with the agent on channel 0 and the client on channel 1.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from rich.progress import Progress
from scipy.signal import butter, sosfilt

from callqa.errors import ConfigError
from callqa.schemas import LabelledCall, Speaker
from callqa.speech.segments import SpeakerSegment, write_rttm

RATE = 16_000
PHONE_RATE = 8_000
ESPEAK_RATE = 22_050
MALE = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8")
FEMALE = ("f1", "f2", "f3", "f4", "f5")
PITCHES = (35, 50, 65)
RATES = (145, 165, 185)
PAUSE = (0.15, 1.0)  # seconds between turns
INTERRUPTION = (0.3, 0.8)  # how far the interrupting turn starts before the previous one ends
SHORT_OVERLAP = (0.1, 0.4)
EDGE_SILENCE = (0.3, 0.8)
INNER_PAUSE = 0.3  # a silence this long inside a turn splits its RTTM segment
TELEPHONE_SNR = (18.0, 30.0)
PLAIN_SNR = (35.0, 45.0)
PEAK = 0.9
MU = 255.0


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker."""

    variant: str
    pitch: int
    rate: int

    @property
    def key(self) -> str:
        return f"ru+{self.variant}-p{self.pitch}-s{self.rate}"


def voice_pool() -> list[Voice]:
    """Distinct voices: every variant at every pitch and rate (117 voices)."""
    return [Voice(v, p, r) for v in (*MALE, *FEMALE) for p in PITCHES for r in RATES]


def pick_voices(rng: random.Random, n: int = 2) -> list[Voice]:
    """``n`` voices with pairwise different variants (so two speakers never sound alike)."""
    variants = rng.sample((*MALE, *FEMALE), n)
    return [Voice(v, rng.choice(PITCHES), rng.choice(RATES)) for v in variants]


def _speakable(text: str) -> str:
    """Text as espeak should read it: quotes and dashes would be read aloud or mangle prosody."""
    text = re.sub(r"[«»\"“”„]", "", text)
    text = re.sub(r"\s*[—–]\s*", ", ", text).replace("…", ", ")
    text = re.sub(r"\s+", " ", text).strip(" ,")
    return text or "э"


def _espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise ConfigError("espeak-ng is not installed (apt-get install espeak-ng); it speaks the synthetic calls")
    return path


def _trim(x: np.ndarray, floor_db: float = -45.0) -> np.ndarray:
    frame = RATE // 100
    n = len(x) // frame
    if n == 0:
        return x
    energy = 20 * np.log10(np.sqrt((x[: n * frame].reshape(n, frame) ** 2).mean(axis=1)) + 1e-9)
    active = np.flatnonzero(energy > energy.max() + floor_db)
    if not len(active):
        return x
    return x[active[0] * frame : (active[-1] + 1) * frame]


@lru_cache(maxsize=8192)
def render_utterance(text: str, voice: Voice) -> np.ndarray:
    """``text`` spoken by ``voice``: float32 mono 16 kHz, edge silence trimmed (cached)."""
    out = subprocess.run(
        [_espeak(), "-v", f"ru+{voice.variant}", "-p", str(voice.pitch), "-s", str(voice.rate), "--stdout",
         _speakable(text)],
        capture_output=True,
        check=True,
    )  # fmt: skip
    wav, rate = sf.read(io.BytesIO(out.stdout), dtype="float32")
    if wav.ndim == 2:
        wav = wav.mean(axis=1)
    audio = _trim(soxr.resample(wav, rate, RATE).astype(np.float32))
    audio.setflags(write=False)  # shared through the cache
    return audio


def _speech_regions(x: np.ndarray) -> list[tuple[int, int]]:
    """Sample ranges of speech inside one utterance (pauses of INNER_PAUSE or more split them)."""
    frame = RATE // 100
    n = len(x) // frame
    if n == 0:
        return [(0, len(x))]
    energy = 20 * np.log10(np.sqrt((x[: n * frame].reshape(n, frame) ** 2).mean(axis=1)) + 1e-9)
    active = energy > energy.max() - 40
    regions: list[list[int]] = []
    gap_frames = int(INNER_PAUSE * 100)
    for i in np.flatnonzero(active):
        if regions and i - regions[-1][1] <= gap_frames:
            regions[-1][1] = i + 1
        else:
            regions.append([i, i + 1])
    return [(a * frame, min(len(x), b * frame)) for a, b in regions] or [(0, len(x))]


@dataclass
class RefTurn:
    """Ground truth for one turn."""

    turn: int
    speaker: str
    start: float
    end: float
    text: str


@dataclass
class SynthCall:
    call: LabelledCall
    audio: np.ndarray  # float32 (channels, n)
    sample_rate: int
    stereo: bool
    telephone: bool
    voices: dict[str, Voice]
    turns: list[RefTurn]
    speech: list[SpeakerSegment]  # speech inside turns, split at inner pauses

    @property
    def segments(self) -> list[SpeakerSegment]:
        """RTTM truth (AGENT/CLIENT), overlaps kept."""
        return self.speech

    @property
    def duration(self) -> float:
        return self.audio.shape[1] / self.sample_rate


@dataclass
class SynthPaths:
    wav: Path
    rttm: Path
    json: Path


def _call_rng(seed: int, call_id: str) -> random.Random:
    return random.Random(int(hashlib.sha256(f"{seed}:{call_id}".encode()).hexdigest()[:16], 16))


def _mu_law(x: np.ndarray) -> np.ndarray:
    """8-bit μ-law quantisation, as a telephone line does it (returns the decoded signal)."""
    y = np.sign(x) * np.log1p(MU * np.abs(np.clip(x, -1, 1))) / np.log1p(MU)
    y = np.round((y + 1) / 2 * 255) / 255 * 2 - 1
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(MU)) / MU).astype(np.float32)


def _add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    active = np.abs(x) > 1e-3
    power = float((x[active] ** 2).mean()) if active.any() else 1e-6
    noise = rng.standard_normal(x.shape).astype(np.float32) * np.sqrt(power / 10 ** (snr_db / 10))
    return x + noise


def render_call(
    call: LabelledCall,
    *,
    seed: int = 0,
    stereo: bool = False,
    telephone: bool = True,
    snr_db: float | None = None,
    overlap_share: float = 0.15,
) -> SynthCall:
    """Speak a labelled call; the result carries the exact truth of who spoke when."""
    rng = _call_rng(seed, call.call_id)
    agent, client = pick_voices(rng, 2)
    voices = {Speaker.AGENT.value: agent, Speaker.CLIENT.value: client}
    placed: list[tuple[str, int, np.ndarray]] = []  # role, start sample, audio
    ref: list[RefTurn] = []
    cursor = rng.uniform(*EDGE_SILENCE)
    prev: RefTurn | None = None
    for k, turn in enumerate(call.turns):
        role = Speaker.AGENT.value if turn.speaker == Speaker.AGENT else Speaker.CLIENT.value
        audio = render_utterance(turn.text, voices[role])
        start = cursor if prev is None else prev.end + rng.uniform(*PAUSE)
        if prev is not None and prev.speaker != role:
            if re.search(r"(—|\s-)\s*$", call.turns[k - 1].text):
                start = prev.end - rng.uniform(*INTERRUPTION)
            elif rng.random() < overlap_share:
                start = prev.end - rng.uniform(*SHORT_OVERLAP)
            start = max(start, prev.start + 0.3)
        begin = round(start * RATE)
        placed.append((role, begin, audio))
        prev = RefTurn(k, role, begin / RATE, (begin + len(audio)) / RATE, turn.text)
        ref.append(prev)
    total = max(b + len(a) for _, b, a in placed) + round(rng.uniform(*EDGE_SILENCE) * RATE)
    tracks = {role: np.zeros(total, dtype=np.float32) for role in voices}
    speech: list[SpeakerSegment] = []
    for role, begin, audio in placed:
        tracks[role][begin : begin + len(audio)] += audio
        speech += [SpeakerSegment((begin + a) / RATE, (begin + b) / RATE, role) for a, b in _speech_regions(audio)]
    signal = (
        np.stack([tracks[Speaker.AGENT.value], tracks[Speaker.CLIENT.value]])
        if stereo
        else (tracks[Speaker.AGENT.value] + tracks[Speaker.CLIENT.value])[None, :]
    )
    signal *= PEAK / max(float(np.abs(signal).max()), 1e-6)
    noise_rng = np.random.default_rng(rng.getrandbits(32))
    snr = snr_db if snr_db is not None else rng.uniform(*(TELEPHONE_SNR if telephone else PLAIN_SNR))
    if telephone:
        band = butter(4, [300, 3400], btype="bandpass", fs=RATE, output="sos")
        rows = [soxr.resample(sosfilt(band, ch).astype(np.float32), RATE, PHONE_RATE) for ch in signal]
        rows = [_mu_law(np.clip(_add_noise(r, snr, noise_rng), -1, 1)) for r in rows]
        signal, rate = np.stack(rows).astype(np.float32), PHONE_RATE
    else:
        signal, rate = np.clip(_add_noise(signal, snr, noise_rng), -1, 1).astype(np.float32), RATE
    timed = call.model_copy(
        update={
            "turns": [
                t.model_copy(update={"start": round(r.start, 3), "end": round(r.end, 3)})
                for t, r in zip(call.turns, ref, strict=True)
            ]
        }
    )
    return SynthCall(timed, signal, rate, stereo, telephone, voices, ref, speech)


def write_synth_call(synth: SynthCall, out_dir: Path) -> SynthPaths:
    """``<id>.wav`` (μ-law 8 kHz or PCM 16 kHz), ``<id>.rttm`` and ``<id>.json`` (the reference)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    uri = synth.call.call_id
    wav = out_dir / f"{uri}.wav"
    sf.write(wav, synth.audio.T, synth.sample_rate, subtype="ULAW" if synth.telephone else "PCM_16")
    rttm = write_rttm(out_dir / f"{uri}.rttm", uri, synth.segments)
    meta = {
        "call": synth.call.model_dump(mode="json"),
        "turns": [asdict(t) for t in synth.turns],
        "voices": {role: v.key for role, v in synth.voices.items()},
        "stereo": synth.stereo,
        "telephone": synth.telephone,
        "sample_rate": synth.sample_rate,
        "duration": round(synth.duration, 3),
        "channel_map": {"AGENT": 0, "CLIENT": 1} if synth.stereo else None,
    }
    path = out_dir / f"{uri}.json"
    path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return SynthPaths(wav, rttm, path)


def render_dataset(
    calls: Sequence[LabelledCall],
    out_dir: Path,
    *,
    seed: int = 0,
    stereo: bool = False,
    telephone: bool = True,
    workers: int = 2,
    progress: bool = False,
) -> list[SynthPaths]:
    """Render and write many calls (threads: espeak runs as a subprocess); order-independent seeds."""

    def one(call: LabelledCall) -> SynthPaths:
        return write_synth_call(render_call(call, seed=seed, stereo=stereo, telephone=telephone), out_dir)

    with Progress(disable=not progress, transient=True) as bar, ThreadPoolExecutor(max_workers=workers) as pool:
        task = bar.add_task("speaking calls", total=len(calls))
        paths = []
        for p in pool.map(one, calls):
            paths.append(p)
            bar.advance(task)
    return paths


def read_reference(json_path: Path) -> tuple[LabelledCall, list[RefTurn], dict]:
    """A reference written by ``write_synth_call``: the timed call, its turns and metadata."""
    meta = json.loads(Path(json_path).read_text(encoding="utf-8"))
    return LabelledCall.model_validate(meta["call"]), [RefTurn(**t) for t in meta["turns"]], meta
