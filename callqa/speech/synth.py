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
import logging
import random
import re
import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr
from rich.progress import Progress
from scipy.signal import butter, lfilter, sosfiltfilt

from callqa.errors import BadInput, ConfigError
from callqa.schemas import LabelledCall, Speaker
from callqa.speech.audio import TARGET_RATE, write_wav
from callqa.speech.segments import SpeakerSegment, write_rttm

logger = logging.getLogger(__name__)

RATE = TARGET_RATE
PHONE_RATE = 8_000
MALE = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8")
FEMALE = ("f1", "f2", "f3", "f4", "f5")
PITCHES = (35, 50, 65)
RATES = (145, 165, 185)
PAUSE = (0.15, 1.0)  # seconds between turns
INTERRUPTION = (0.3, 0.8)  # how far the interrupting turn starts before the previous one ends
SHORT_OVERLAP = (0.1, 0.4)
MIN_LEAD = 0.3  # an overlapping turn still starts this long after the one it overlaps
EDGE_SILENCE = (0.3, 0.8)
INNER_PAUSE = 0.3  # a silence this long inside a turn splits its RTTM segment
SPEAKER_LEVEL_DB = (-4.0, 4.0)  # the client's level relative to the agent's, per call
TELEPHONE_SNR = (18.0, 30.0)
PLAIN_SNR = (35.0, 45.0)
TELEPHONE_BAND = (300.0, 3400.0)
PEAK = 0.9
CACHE_SIZE = 1024  # utterances; a few hundred MB at most, enough for the stock phrases of a dataset
_SILENCE_DBFS = -60.0  # espeak's own silence is digital zero, so anything above this is speech
_FRAME = RATE // 100  # 10 ms
_INTERRUPTED = re.compile(r"(?:[—–]|\s-)\s*$")
_ROLES = (Speaker.AGENT.value, Speaker.CLIENT.value)
# J. O. Smith's pinking filter (1/f within ±0.05 dB): O(n), where an FFT of an awkward length is slow
_PINK = ([0.049922035, -0.095993537, 0.050612699, -0.004408786], [1.0, -2.494956002, 2.017265875, -0.522189400])


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an espeak variant at a pitch and a speaking rate."""

    variant: str
    pitch: int
    rate: int

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_]+", self.variant):
            raise BadInput(f"espeak variant {self.variant!r} is not a variant name like 'm3' or 'f2'")
        if not 0 <= self.pitch <= 99 or not 80 <= self.rate <= 450:
            raise BadInput(f"voice pitch must be 0..99 and rate 80..450 wpm, got {self.pitch} and {self.rate}")

    @property
    def key(self) -> str:
        """Stable id, e.g. ``ru+m3-p45-s160``; the speaker label in training data."""
        return f"ru+{self.variant}-p{self.pitch}-s{self.rate}"

    @classmethod
    def from_key(cls, key: str) -> Voice:
        """The voice a ``key`` names (the inverse of ``Voice.key``)."""
        m = re.fullmatch(r"ru\+(\w+)-p(\d+)-s(\d+)", key)
        if m is None:
            raise BadInput(f"{key!r} is not a voice key like 'ru+m3-p45-s160'")
        return cls(m[1], int(m[2]), int(m[3]))


def voice_pool() -> list[Voice]:
    """Distinct voices: every variant at every pitch and rate (117 voices)."""
    return [Voice(v, p, r) for v in (*MALE, *FEMALE) for p in PITCHES for r in RATES]


def pick_voices(rng: random.Random, n: int = 2) -> list[Voice]:
    """``n`` voices with pairwise different variants, so two speakers never sound alike."""
    variants = (*MALE, *FEMALE)
    if not 1 <= n <= len(variants):
        raise BadInput(f"can pick 1..{len(variants)} voices with different variants, asked for {n}")
    return [Voice(v, rng.choice(PITCHES), rng.choice(RATES)) for v in rng.sample(variants, n)]


def _speakable(text: str) -> str:
    """Text as espeak should read it: quotes, dashes and markup symbols are read aloud or mangle prosody."""
    text = re.sub(r"[«»\"“”„*_#\[\]{}<>|~^`\\]", "", text)
    text = re.sub(r"\s*[—–]\s*|\s+-\s+|\s*(?:…|\.\.\.)\s*", ", ", text)
    text = re.sub(r"\s+", " ", text).strip(" ,-")
    return text if re.search(r"\w", text) else ""


@lru_cache(maxsize=1)
def _espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise ConfigError("espeak-ng is not installed (apt-get install espeak-ng); it speaks the synthetic calls")
    return path


def _frame_dbfs(x: np.ndarray) -> np.ndarray:
    """Loudness of each 10 ms frame; a trailing partial frame counts as a frame."""
    n = -(-len(x) // _FRAME)
    padded = np.zeros(n * _FRAME, dtype=np.float32)
    padded[: len(x)] = x
    return 20 * np.log10(np.sqrt((padded.reshape(n, _FRAME) ** 2).mean(axis=1)) + 1e-12)


@lru_cache(maxsize=CACHE_SIZE)
def render_utterance(text: str, voice: Voice) -> np.ndarray:
    """``text`` spoken by ``voice``: float32 mono 16 kHz, edge silence trimmed (cached, read-only)."""
    speakable = _speakable(text)
    if not speakable:  # nothing to say ("—", "…"): the turn is silent
        empty = np.zeros(0, dtype=np.float32)
        empty.setflags(write=False)
        return empty
    # "--" ends the options: a turn starting with "-" would otherwise be taken for one
    args = [_espeak(), "-v", f"ru+{voice.variant}", "-p", str(voice.pitch), "-s", str(voice.rate), "--stdout"]
    try:
        out = subprocess.run([*args, "--", speakable], capture_output=True, check=True)
    except subprocess.CalledProcessError as exc:
        raise ConfigError(f"espeak-ng failed for voice {voice.key}: {exc.stderr.decode(errors='replace')}") from exc
    wav, rate = sf.read(io.BytesIO(out.stdout), dtype="float32", always_2d=True)
    audio = soxr.resample(wav.mean(axis=1), rate, RATE).astype(np.float32)
    active = np.flatnonzero(_frame_dbfs(audio) > _SILENCE_DBFS)
    audio = audio[active[0] * _FRAME : (active[-1] + 1) * _FRAME] if len(active) else audio[:0]
    audio = np.ascontiguousarray(audio)
    audio.setflags(write=False)  # shared through the cache
    return audio


def _speech_regions(x: np.ndarray) -> list[tuple[int, int]]:
    """Sample ranges of speech inside one utterance; silences of ``INNER_PAUSE`` or more split them."""
    regions: list[list[int]] = []
    gap = int(INNER_PAUSE * 100)
    for i in np.flatnonzero(_frame_dbfs(x) > _SILENCE_DBFS):
        if regions and i - regions[-1][1] < gap:
            regions[-1][1] = i + 1
        else:
            regions.append([i, i + 1])
    return [(int(a) * _FRAME, min(len(x), int(b) * _FRAME)) for a, b in regions]


@dataclass
class RefTurn:
    """Ground truth for one turn: who said what, when (seconds in the rendered call)."""

    turn: int
    speaker: str
    start: float
    end: float
    text: str


@dataclass
class SynthCall:
    """A rendered call: the audio and the exact truth of who said what, when."""

    call: LabelledCall
    audio: np.ndarray  # float32 (channels, n): exactly the samples the WAV decodes to
    sample_rate: int
    stereo: bool
    telephone: bool
    voices: dict[str, Voice]
    turns: list[RefTurn]
    speech: list[SpeakerSegment] = field(default_factory=list)  # speech inside turns, split at inner pauses
    snr_db: float | None = None
    noise: str = "white"

    @property
    def segments(self) -> list[SpeakerSegment]:
        """RTTM truth (AGENT/CLIENT), overlaps kept; the turns themselves when no finer speech is known."""
        if self.speech:
            return list(self.speech)
        return [SpeakerSegment(t.start, t.end, t.speaker) for t in self.turns if t.end > t.start]

    @property
    def duration(self) -> float:
        return self.audio.shape[1] / self.sample_rate


@dataclass
class SynthPaths:
    """Where one rendered call was written."""

    wav: Path
    rttm: Path
    json: Path


@dataclass
class _Placed:
    role: str
    begin: int  # sample at 16 kHz
    audio: np.ndarray


def _call_rng(seed: int, call_id: str) -> random.Random:
    """A call's own random stream: the same for a call whatever else is rendered, and in whatever order."""
    return random.Random(int(hashlib.sha256(f"{seed}:{call_id}".encode()).hexdigest()[:16], 16))


def _role(speaker: Speaker) -> str:
    return Speaker.AGENT.value if speaker == Speaker.AGENT else Speaker.CLIENT.value


def _layout(call: LabelledCall, voices: dict[str, Voice], rng: random.Random, overlap_share: float) -> list[_Placed]:
    """Place every turn on the timeline: pauses, interruptions and short overlaps at speaker changes."""
    placed: list[_Placed] = []
    last_end = dict.fromkeys(_ROLES, float("-inf"))
    prev: tuple[str, float, float] | None = None  # role, start, end of the previous turn
    for k, turn in enumerate(call.turns):
        role = _role(turn.speaker)
        audio = render_utterance(turn.text, voices[role])
        if prev is None:
            start = rng.uniform(*EDGE_SILENCE)
        else:
            prev_role, prev_start, prev_end = prev
            start = prev_end + rng.uniform(*PAUSE)
            if prev_role != role and prev_end > prev_start:
                if _INTERRUPTED.search(call.turns[k - 1].text):
                    start = prev_end - rng.uniform(*INTERRUPTION)
                elif rng.random() < overlap_share:
                    start = prev_end - rng.uniform(*SHORT_OVERLAP)
                start = max(start, prev_start + MIN_LEAD)
            # one voice never overlaps itself, even after the other cut in briefly
            start = max(start, last_end[role] + PAUSE[0])
        begin = round(start * RATE)
        placed.append(_Placed(role, begin, audio))
        prev = (role, begin / RATE, (begin + len(audio)) / RATE)
        if len(audio):
            last_end[role] = prev[2]
    return placed


def _noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-power white or pink (1/f) noise."""
    noise = rng.standard_normal(n)
    if colour == "pink":
        noise = lfilter(*_PINK, noise)
    return (noise / (noise.std() + 1e-12)).astype(np.float32)


def _add_noise(rows: np.ndarray, masks: np.ndarray, snr_db: float, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Noise on every channel at ``snr_db`` below that channel's speech power (measured where it speaks)."""
    out = np.empty_like(rows)
    for c, (row, mask) in enumerate(zip(rows, masks, strict=True)):
        power = float((row[mask] ** 2).mean()) if mask.any() else float((row**2).mean()) + 1e-8
        out[c] = row + _noise(len(row), colour, rng) * np.float32(np.sqrt(power / 10 ** (snr_db / 10)))
    return out


def _codec(signal: np.ndarray, rate: int, subtype: str) -> np.ndarray:
    """The samples as the WAV will hold them (μ-law or 16-bit), so memory and file agree exactly."""
    buf = io.BytesIO()
    sf.write(buf, signal.T, rate, format="WAV", subtype=subtype)
    buf.seek(0)
    decoded, _ = sf.read(buf, dtype="float32", always_2d=True)
    return np.ascontiguousarray(decoded.T)


def _through_the_line(
    signal: np.ndarray, active: np.ndarray, *, telephone: bool, snr_db: float, colour: str, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """Clean 16 kHz speech as recorded: telephone band, 8 kHz and μ-law, or 16 kHz PCM; noise either way."""
    if telephone:
        # zero-phase band-pass: a causal filter would shift the speech against the truth by its group delay
        band = butter(4, TELEPHONE_BAND, btype="bandpass", fs=RATE, output="sos")
        narrow = sosfiltfilt(band, signal, axis=-1).astype(np.float32)
        n = signal.shape[1]
        signal = np.stack([soxr.resample(row, RATE, PHONE_RATE, quality="HQ") for row in narrow])
        active = active[:, np.minimum(np.arange(signal.shape[1]) * (RATE // PHONE_RATE), n - 1)]
        rate, subtype = PHONE_RATE, "ULAW"
    else:
        rate, subtype = RATE, "PCM_16"
    signal = _add_noise(signal, active, snr_db, colour, rng)
    signal *= np.float32(PEAK / max(float(np.abs(signal).max()), 1e-6))  # one gain: keeps the speakers' balance
    return _codec(signal, rate, subtype), rate


def render_call(
    call: LabelledCall,
    *,
    seed: int = 0,
    stereo: bool = False,
    telephone: bool = True,
    snr_db: float | None = None,
    overlap_share: float = 0.15,
    agent_voice: Voice | None = None,
) -> SynthCall:
    """Speak a labelled call; the result carries the exact truth of who spoke when.

    ``seed`` and the call id fix voices, timing and noise; ``agent_voice`` makes the manager the
    same person in several calls (the client then gets another variant); ``snr_db`` defaults to a random
    18–30 dB (telephone) or 35–45 dB (plain); ``overlap_share`` is the chance that a speaker
    change without an interruption in the text still overlaps briefly.
    """
    if not 0.0 <= overlap_share <= 1.0:
        raise BadInput(f"overlap_share must be within 0..1, got {overlap_share}")
    rng = _call_rng(seed, call.call_id)
    voices = dict(zip(_ROLES, pick_voices(rng, 2), strict=True))
    if agent_voice is not None:
        client = voices[Speaker.CLIENT.value]
        if client.variant == agent_voice.variant:  # never two speakers of the same variant
            other = next(v for v in (*MALE, *FEMALE) if v not in (agent_voice.variant, client.variant))
            client = Voice(other, client.pitch, client.rate)
        voices = {Speaker.AGENT.value: agent_voice, Speaker.CLIENT.value: client}
    placed = _layout(call, voices, rng, overlap_share)
    total = max(p.begin + len(p.audio) for p in placed) + round(rng.uniform(*EDGE_SILENCE) * RATE)

    tracks = {role: np.zeros(total, dtype=np.float32) for role in _ROLES}
    masks = {role: np.zeros(total, dtype=bool) for role in _ROLES}
    speech: list[SpeakerSegment] = []
    for p in placed:
        tracks[p.role][p.begin : p.begin + len(p.audio)] += p.audio
        for a, b in _speech_regions(p.audio):
            masks[p.role][p.begin + a : p.begin + b] = True
            speech.append(SpeakerSegment((p.begin + a) / RATE, (p.begin + b) / RATE, p.role))
    # espeak variants differ in loudness; level them, then let the client sit a few dB off as on a real line
    levels = {Speaker.AGENT.value: 0.0, Speaker.CLIENT.value: rng.uniform(*SPEAKER_LEVEL_DB)}
    for role in _ROLES:
        if masks[role].any():
            rms = float(np.sqrt((tracks[role][masks[role]] ** 2).mean()))
            tracks[role] *= np.float32(10 ** (levels[role] / 20) * 0.1 / max(rms, 1e-6))

    agent, client = tracks[Speaker.AGENT.value], tracks[Speaker.CLIENT.value]
    agent_mask, client_mask = masks[Speaker.AGENT.value], masks[Speaker.CLIENT.value]
    signal = np.stack([agent, client]) if stereo else (agent + client)[None, :]
    active = np.stack([agent_mask, client_mask]) if stereo else (agent_mask | client_mask)[None, :]
    snr = snr_db if snr_db is not None else rng.uniform(*(TELEPHONE_SNR if telephone else PLAIN_SNR))
    colour = rng.choice(("white", "pink"))
    audio, rate = _through_the_line(
        signal, active, telephone=telephone, snr_db=snr, colour=colour, rng=np.random.default_rng(rng.getrandbits(64))
    )

    turns = [
        RefTurn(k, p.role, p.begin / RATE, (p.begin + len(p.audio)) / RATE, t.text)
        for k, (t, p) in enumerate(zip(call.turns, placed, strict=True))
    ]
    timed = call.model_copy(
        update={
            "turns": [
                t.model_copy(update={"start": r.start, "end": r.end}) for t, r in zip(call.turns, turns, strict=True)
            ]
        }
    )
    speech.sort(key=lambda s: (s.start, s.speaker))
    logger.debug(
        "rendered call",
        extra={"call_id": call.call_id, "seconds": audio.shape[1] / rate, "turns": len(turns), "snr_db": snr},
    )
    return SynthCall(timed, audio, rate, stereo, telephone, voices, turns, speech, round(snr, 2), colour)


def write_synth_call(synth: SynthCall, out_dir: Path) -> SynthPaths:
    """``<id>.wav`` (μ-law 8 kHz or PCM 16 kHz), ``<id>.rttm`` and ``<id>.json`` (the reference)."""
    out_dir = Path(out_dir)
    uri = synth.call.call_id
    if Path(uri).name != uri or uri in (".", "..") or re.search(r"\s", uri):
        raise BadInput(f"call id {uri!r} cannot name files and an RTTM recording (no slashes or spaces)")
    wav = write_wav(out_dir / f"{uri}.wav", synth.audio, synth.sample_rate, "ULAW" if synth.telephone else "PCM_16")
    rttm = write_rttm(out_dir / f"{uri}.rttm", uri, synth.segments)
    meta: dict[str, Any] = {
        "call": json.loads(synth.call.json_line()),
        "turns": [asdict(t) for t in synth.turns],
        "voices": {role: v.key for role, v in synth.voices.items()},
        "stereo": synth.stereo,
        "telephone": synth.telephone,
        "sample_rate": synth.sample_rate,
        "duration": round(synth.duration, 4),
        "channel_map": {"AGENT": 0, "CLIENT": 1} if synth.stereo else None,
        "snr_db": synth.snr_db,
        "noise": synth.noise,
    }
    path = out_dir / f"{uri}.json"
    path.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
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
    agent_voice: Voice | None = None,
) -> list[SynthPaths]:
    """Render and write many calls in threads (espeak runs as a subprocess); paths in the order of ``calls``."""
    ids = [c.call_id for c in calls]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise BadInput(f"call ids must be unique, their files would overwrite each other: {', '.join(dupes[:5])}")

    def one(call: LabelledCall) -> SynthPaths:
        synth = render_call(call, seed=seed, stereo=stereo, telephone=telephone, agent_voice=agent_voice)
        return write_synth_call(synth, out_dir)

    paths: list[SynthPaths | None] = [None] * len(calls)
    with Progress(disable=not progress, transient=True) as bar, ThreadPoolExecutor(max(1, workers)) as pool:
        task = bar.add_task("speaking calls", total=len(calls))
        futures = {pool.submit(one, call): k for k, call in enumerate(calls)}
        for future in as_completed(futures):
            paths[futures[future]] = future.result()
            bar.advance(task)
    logger.info("rendered synthetic calls", extra={"calls": len(calls), "out_dir": str(out_dir)})
    return [p for p in paths if p is not None]


def read_reference(json_path: Path) -> tuple[LabelledCall, list[RefTurn], dict]:
    """A reference written by ``write_synth_call``: the timed call, its turns and the metadata."""
    meta = json.loads(Path(json_path).read_text(encoding="utf-8"))
    if not isinstance(meta, dict) or "call" not in meta or "turns" not in meta:
        raise BadInput(f"{json_path}: not a synthetic call reference (needs 'call' and 'turns')")
    return LabelledCall.model_validate(meta["call"]), [RefTurn(**t) for t in meta["turns"]], meta
