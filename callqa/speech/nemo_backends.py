"""NeMo speech models for inference, loaded from local ``.nemo`` files (nothing is ever downloaded).

TitaNet speaker embeddings, clustering diarization over our VAD segments (NeMo's
``ClusteringDiarizer`` with an external VAD manifest), Sortformer end-to-end diarization in
overlapping windows, and FastConformer-CTC transcription with word timestamps. The models are
built and trained by ``callqa speech build-models``.

``import nemo.collections.asr`` takes 7–14 s and ~0.7 GB, so it happens lazily, once per
process, behind a lock; a restored model is cached per file and shared by all stages that
name it (the clustering diarizer and the voiceprint embedder use the same TitaNet).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from callqa.errors import BadInput, ModelNotFound
from callqa.schemas import Word
from callqa.speech.segments import Segment, SpeakerSegment

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
NUM_THREADS = 2  # the product's CPU budget; torch would otherwise take every core
BUILD_HINT = "run `callqa speech build-models`"
_QUIET_LOGGERS = ("nemo_logger", "nv_one_logger", "lightning.pytorch", "lightning.fabric", "pytorch_lightning")

_import_lock = threading.RLock()
_models_lock = threading.Lock()
_models: dict[tuple[str, str, float], _Loaded] = {}


def quiet_nemo() -> None:
    """Keep NeMo's and Lightning's INFO chatter (one line per batch and manifest) out of our logs."""
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from nemo.utils import logging as nemo_logging
    except ImportError:  # pragma: no cover - nemo is a dependency
        return
    nemo_logging.setLevel(logging.ERROR)


def nemo_asr() -> ModuleType:
    """``nemo.collections.asr``, imported once per process (slow: 7–14 s)."""
    with _import_lock:
        return _import_nemo_asr()


@functools.cache
def _import_nemo_asr() -> ModuleType:
    import torch

    torch.set_num_threads(NUM_THREADS)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    from nemo.collections import asr

    quiet_nemo()
    return asr


def require_model_file(path: str | Path) -> Path:
    """The path of an existing ``.nemo`` file, or ``ModelNotFound`` naming it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelNotFound(f"{path}: no such model file; {BUILD_HINT}")
    return path


@dataclass
class _Loaded:
    model: Any
    lock: threading.Lock  # NeMo models keep per-call state (test dataloaders, decoding config)


def _restore(class_name: str, path: Path) -> _Loaded:
    """A model restored from ``path`` on CPU in eval mode, cached per (class, file, mtime)."""
    path = require_model_file(path)
    key = (class_name, str(path.resolve()), path.stat().st_mtime)
    with _models_lock:
        if key not in _models:
            cls = getattr(nemo_asr().models, class_name)
            try:
                model = cls.restore_from(str(path), map_location="cpu")
            except Exception as exc:  # a truncated or foreign file fails deep inside tar/yaml/torch
                raise ModelNotFound(f"{path}: not a loadable {class_name} ({exc}); {BUILD_HINT}") from exc
            model.eval()
            for stale in [k for k in _models if k[:2] == key[:2]]:  # the file was rebuilt since
                del _models[stale]
            _models[key] = _Loaded(model, threading.Lock())
        return _models[key]


def _clip(samples: np.ndarray, start: float, end: float) -> np.ndarray:
    return samples[max(0, round(start * SAMPLE_RATE)) : max(0, round(end * SAMPLE_RATE))]


def pad_batch(clips: Sequence[np.ndarray]) -> tuple[Any, Any]:
    """Clips as one zero-padded float32 batch and their lengths (an empty clip counts one sample)."""
    import torch

    lengths = torch.tensor([max(1, len(c)) for c in clips])
    signal = torch.zeros(len(clips), int(lengths.max()))
    for i, c in enumerate(clips):
        signal[i, : len(c)] = torch.from_numpy(np.ascontiguousarray(c, dtype=np.float32))
    return signal, lengths


def _clean_regions(regions: Sequence[Segment], duration: float) -> list[Segment]:
    """Regions clipped to the recording, sorted, empty ones dropped."""
    out = [Segment(max(0.0, r.start), min(duration, r.end)) for r in sorted(regions, key=lambda r: r.start)]
    return [r for r in out if r.end > r.start]


def _pieces(regions: Sequence[Segment], window: float, min_piece: float) -> list[Segment]:
    """Regions cut into near-equal pieces of at most ``window`` s; pieces under ``min_piece`` dropped."""
    out: list[Segment] = []
    for r in regions:
        n = max(1, math.ceil(r.duration / window))
        step = r.duration / n
        out += [Segment(r.start + k * step, r.start + (k + 1) * step) for k in range(n)]
    kept = [p for p in out if p.duration >= min_piece]
    return kept or out  # very short speech: better a noisy embedding than none


# -- speaker embeddings -------------------------------------------------------------------------
@dataclass(frozen=True)
class EmbedderConfig:
    window_seconds: float = 2.0  # about the crops TitaNet was trained on
    min_piece_seconds: float = 0.4
    batch_size: int = 16


class TitaNetEmbedder:
    """A voice as one L2-normalised TitaNet embedding of the speech in the given regions."""

    def __init__(self, model_path: str | Path, config: EmbedderConfig | None = None) -> None:
        self.model_path = require_model_file(model_path)
        self.config = config or EmbedderConfig()
        self.name = f"titanet:{self.model_path.stem}"

    def embed(self, samples: np.ndarray, regions: list[Segment]) -> np.ndarray:
        """One L2-normalised embedding of the speech inside ``regions`` (duration-weighted mean)."""
        import torch

        cfg = self.config
        duration = len(samples) / SAMPLE_RATE
        pieces = _pieces(_clean_regions(regions, duration), cfg.window_seconds, cfg.min_piece_seconds)
        if not pieces:
            raise BadInput("no speech to embed: the regions hold no audio")
        loaded = _restore("EncDecSpeakerLabelModel", self.model_path)
        vectors, weights = [], []
        with loaded.lock, torch.inference_mode():
            for k in range(0, len(pieces), cfg.batch_size):
                signal, lengths = pad_batch([_clip(samples, p.start, p.end) for p in pieces[k : k + cfg.batch_size]])
                _, embs = loaded.model.forward(input_signal=signal, input_signal_length=lengths)
                vectors.append(torch.nn.functional.normalize(embs, dim=-1).numpy())
                weights += [p.duration for p in pieces[k : k + cfg.batch_size]]
        mean = np.average(np.concatenate(vectors), axis=0, weights=np.asarray(weights))
        return (mean / max(float(np.linalg.norm(mean)), 1e-9)).astype(np.float32)


# -- clustering diarization ---------------------------------------------------------------------
@dataclass(frozen=True)
class ClusteringConfig:
    """NeMo clustering-diarizer parameters (multi-scale embeddings + NME spectral clustering).

    Long recordings: once a recording has more than ``embeddings_per_chunk`` base-scale
    embeddings (0.25 s shift: 4000 ≈ 17 min of speech), NeMo clusters it in chunks, over-clustering
    each into ``chunk_cluster_count`` groups and clustering the group centroids, so the affinity
    matrices stay ~scales × 4000² floats (~200 MB) instead of growing with the square of the length.
    """

    window_lengths: tuple[float, ...] = (1.5, 1.0, 0.5)
    shift_lengths: tuple[float, ...] = (0.75, 0.5, 0.25)
    multiscale_weights: tuple[float, ...] = (1.0, 1.0, 1.0)
    max_num_speakers: int = 8
    max_rp_threshold: float = 0.25
    sparse_search_volume: int = 30
    enhanced_count_thres: int = 80
    embeddings_per_chunk: int = 4000
    chunk_cluster_count: int = 50
    batch_size: int = 64
    min_speech_seconds: float = 2.0  # less speech than this is one speaker: clustering needs several windows


class NemoClusteringDiarizer:
    """NeMo ``ClusteringDiarizer`` over our VAD segments with a local TitaNet; labels ``spk0``, ``spk1``…"""

    def __init__(self, speaker_model_path: str | Path, config: ClusteringConfig | None = None) -> None:
        self.model_path = require_model_file(speaker_model_path)
        self.config = config or ClusteringConfig()
        self.name = f"nemo-clustering:{self.model_path.stem}"

    def _diarizer_config(self, work: Path, manifest: Path, vad_manifest: Path, oracle: bool) -> Any:
        from omegaconf import OmegaConf

        cfg = self.config
        return OmegaConf.create(
            {
                "name": "ClusterDiarizer",
                "num_workers": 0,
                "sample_rate": SAMPLE_RATE,
                "batch_size": cfg.batch_size,
                "device": "cpu",
                "verbose": False,
                "diarizer": {
                    "manifest_filepath": str(manifest),
                    "out_dir": str(work),
                    "oracle_vad": False,
                    "collar": 0.25,
                    "ignore_overlap": True,
                    "vad": {"model_path": None, "external_vad_manifest": str(vad_manifest), "parameters": {}},
                    "speaker_embeddings": {
                        "model_path": str(self.model_path),
                        "parameters": {
                            "window_length_in_sec": list(cfg.window_lengths),
                            "shift_length_in_sec": list(cfg.shift_lengths),
                            "multiscale_weights": list(cfg.multiscale_weights),
                            "save_embeddings": False,
                        },
                    },
                    "clustering": {
                        "parameters": {
                            "oracle_num_speakers": oracle,
                            "max_num_speakers": cfg.max_num_speakers,
                            "enhanced_count_thres": cfg.enhanced_count_thres,
                            "max_rp_threshold": cfg.max_rp_threshold,
                            "sparse_search_volume": cfg.sparse_search_volume,
                            "maj_vote_spk_count": False,
                            "chunk_cluster_count": cfg.chunk_cluster_count,
                            "embeddings_per_chunk": cfg.embeddings_per_chunk,
                        }
                    },
                },
            }
        )

    def __call__(self, samples: np.ndarray, speech: list[Segment], num_speakers: int | None) -> list[SpeakerSegment]:
        """Speaker segments over the VAD ``speech``; ``num_speakers`` given = oracle count, None = estimated."""
        duration = len(samples) / SAMPLE_RATE
        regions = _clean_regions(speech, duration)
        if not regions:
            return []
        if sum(r.duration for r in regions) < self.config.min_speech_seconds or num_speakers == 1:
            return [SpeakerSegment(r.start, r.end, "spk0") for r in regions]
        loaded = _restore("EncDecSpeakerLabelModel", self.model_path)
        diarizer_class = _in_memory_clustering_diarizer()
        uri = "call"
        with tempfile.TemporaryDirectory(prefix="callqa-diar-") as tmp, loaded.lock:
            work = Path(tmp)
            # NeMo addresses audio by path; the windows are cut from ``samples`` in memory instead
            audio_path = str(work / f"{uri}.wav")
            manifest, vad_manifest = work / "input.json", work / "vad.json"
            _write_jsonl(
                manifest,
                [
                    {
                        "audio_filepath": audio_path,
                        "offset": 0,
                        "duration": duration,
                        "label": "infer",
                        "text": "-",
                        "num_speakers": num_speakers,
                        "rttm_filepath": None,
                        "uem_filepath": None,
                    }
                ],
            )
            _write_jsonl(
                vad_manifest,
                [
                    {
                        "audio_filepath": audio_path,
                        "offset": round(r.start, 3),
                        "duration": round(r.duration, 3),
                        "label": "UNK",
                        "uniq_id": uri,
                    }
                    for r in regions
                ],
            )
            cfg = self._diarizer_config(work, manifest, vad_manifest, oracle=num_speakers is not None)
            diarizer = diarizer_class(cfg=cfg, speaker_model=loaded.model)
            diarizer.samples = samples
            diarizer.embed_batch = self.config.batch_size
            diarizer.diarize()
            rttm = work / "pred_rttms" / f"{uri}.rttm"
            segments = _read_nemo_rttm(rttm) if rttm.is_file() else []
        return _relabel(segments)


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _in_memory_clustering_diarizer() -> type:
    """NeMo's ``ClusteringDiarizer`` with its embedding step replaced (built once, after the NeMo import).

    NeMo reads every window back from disk and runs TitaNet under CPU autocast, i.e. bfloat16, which
    is ~5× slower than float32 on CPUs without bf16 units; here the windows are cut from the samples
    in memory, batched by length and embedded in float32. Segmentation and clustering stay NeMo's.
    """
    with _import_lock:
        return _build_in_memory_clustering_diarizer()


@functools.cache
def _build_in_memory_clustering_diarizer() -> type:
    import torch
    from nemo.collections.asr.parts.utils import longform_clustering
    from tqdm import tqdm

    base = nemo_asr().models.ClusteringDiarizer
    # long-form clustering draws a progress bar whatever ``verbose`` says; keep server logs clean
    longform_clustering.tqdm = functools.partial(tqdm, disable=True)

    class InMemoryClusteringDiarizer(base):  # type: ignore[misc, valid-type]
        samples: np.ndarray
        embed_batch: int = 64

        def _extract_embeddings(self, manifest_file: str, scale_idx: int, num_scales: int) -> None:
            rows = [json.loads(line) for line in Path(manifest_file).read_text(encoding="utf-8").splitlines() if line]
            order = sorted(range(len(rows)), key=lambda i: rows[i]["duration"])  # similar lengths batch together
            embs: list[Any] = [None] * len(rows)
            model = self._speaker_model
            model.eval()
            with torch.inference_mode():
                for k in range(0, len(order), self.embed_batch):
                    idx = order[k : k + self.embed_batch]
                    clips = [
                        _clip(self.samples, rows[i]["offset"], rows[i]["offset"] + rows[i]["duration"]) for i in idx
                    ]
                    signal, lengths = pad_batch(clips)
                    _, out = model.forward(input_signal=signal, input_signal_length=lengths)
                    for j, i in enumerate(idx):
                        embs[i] = out[j]
            self.embeddings, self.time_stamps = {}, {}
            by_uri: dict[str, list[int]] = {}
            for i, row in enumerate(rows):
                by_uri.setdefault(Path(row["audio_filepath"]).stem, []).append(i)
            for uri, idx in by_uri.items():
                self.embeddings[uri] = torch.stack([embs[i] for i in idx]) if idx else torch.empty(0)
                self.time_stamps[uri] = [[rows[i]["offset"], rows[i]["offset"] + rows[i]["duration"]] for i in idx]

    return InMemoryClusteringDiarizer


def _read_nemo_rttm(path: Path) -> list[SpeakerSegment]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[0] == "SPEAKER":
            start, dur = float(parts[3]), float(parts[4])
            out.append(SpeakerSegment(start, start + dur, parts[7]))
    return out


def _relabel(segments: Sequence[SpeakerSegment]) -> list[SpeakerSegment]:
    """Speaker labels as ``spk0``, ``spk1``… in order of first appearance; segments sorted by time."""
    ordered = sorted(segments, key=lambda s: (s.start, s.end))
    names: dict[str, str] = {}
    for s in ordered:
        names.setdefault(s.speaker, f"spk{len(names)}")
    return [SpeakerSegment(round(s.start, 3), round(s.end, 3), names[s.speaker]) for s in ordered if s.end > s.start]


# -- Sortformer ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SortformerConfig:
    window_seconds: float = 30.0
    overlap_seconds: float = 10.0  # shared by consecutive windows: speakers are matched on it
    threshold: float = 0.5
    min_speaker_seconds: float = 0.5  # a "speaker" with less activity than this is noise
    min_segment_seconds: float = 0.16
    max_gap_seconds: float = 0.24  # a same-speaker gap this short is bridged


class SortformerDiarizer:
    """Sortformer on long recordings: overlapping windows, speakers linked across windows by activity."""

    def __init__(self, model_path: str | Path, config: SortformerConfig | None = None) -> None:
        self.model_path = require_model_file(model_path)
        self.config = config or SortformerConfig()
        if self.config.overlap_seconds >= self.config.window_seconds:
            raise BadInput("Sortformer windows must be longer than their overlap")
        self.name = f"sortformer:{self.model_path.stem}"

    def _window_probs(self, loaded: _Loaded, samples: np.ndarray) -> tuple[np.ndarray, float]:
        """Speaker activity (frames × heads) of the whole recording, local heads linked to global speakers."""
        import torch

        model = loaded.model
        frame = _output_frame_seconds(model)
        win = round(self.config.window_seconds * SAMPLE_RATE)
        hop = win - round(self.config.overlap_seconds * SAMPLE_RATE)
        n_frames = max(1, math.ceil(len(samples) / SAMPLE_RATE / frame))
        total = np.zeros((n_frames, 0), dtype=np.float64)
        count = np.zeros(n_frames, dtype=np.float64)
        starts = list(range(0, max(1, len(samples) - (win - hop)), hop))
        with loaded.lock, torch.inference_mode():
            for begin in starts:
                chunk = np.ascontiguousarray(samples[begin : begin + win], dtype=np.float32)
                if len(chunk) < SAMPLE_RATE // 10:
                    continue
                preds = model.forward(
                    audio_signal=torch.from_numpy(chunk)[None],
                    audio_signal_length=torch.tensor([len(chunk)]),
                )[0].numpy()
                f0 = round(begin / SAMPLE_RATE / frame)
                preds = preds[: max(0, n_frames - f0)]
                local = _link_speakers(preds, total[f0 : f0 + len(preds)], count[f0 : f0 + len(preds)])
                grow = local.max(initial=-1) + 1 - total.shape[1]
                if grow > 0:
                    total = np.pad(total, ((0, 0), (0, grow)))
                for head, column in enumerate(local):
                    if column >= 0:
                        total[f0 : f0 + len(preds), column] += preds[:, head]
                count[f0 : f0 + len(preds)] += 1
        return total / np.maximum(count, 1)[:, None], frame

    def __call__(self, samples: np.ndarray, speech: list[Segment], num_speakers: int | None) -> list[SpeakerSegment]:
        """Speaker segments inside the VAD ``speech`` (each speech frame gets at least its likeliest speaker)."""
        cfg = self.config
        duration = len(samples) / SAMPLE_RATE
        regions = _clean_regions(speech, duration)
        if not regions:
            return []
        probs, frame = self._window_probs(_restore("SortformerEncLabelModel", self.model_path), samples)
        activity = (probs >= cfg.threshold).sum(axis=0) * frame
        keep = [int(k) for k in np.argsort(-activity) if activity[k] >= cfg.min_speaker_seconds]
        if num_speakers is not None:
            keep = keep[:num_speakers]
        if not keep:  # nothing confident: the likeliest head speaks all the speech
            keep = [int(np.argmax(probs.sum(axis=0)))] if probs.shape[1] else []
        if not keep:
            return [SpeakerSegment(r.start, r.end, "spk0") for r in regions]
        probs = probs[:, keep]
        speech_mask = np.zeros(len(probs), dtype=bool)
        for r in regions:
            speech_mask[int(r.start / frame) : math.ceil(r.end / frame)] = True
        active = (probs >= cfg.threshold) & speech_mask[:, None]
        silent = speech_mask & ~active.any(axis=1)
        active[silent, np.argmax(probs[silent], axis=1)] = True
        segments: list[SpeakerSegment] = []
        for k in range(active.shape[1]):
            segments += _mask_segments(active[:, k], frame, f"h{k}", cfg.max_gap_seconds, cfg.min_segment_seconds)
        # frames are coarse (80 ms): cut every segment back to the VAD speech it came from
        clipped = [
            SpeakerSegment(max(s.start, r.start), min(s.end, r.end), s.speaker)
            for s in segments
            for r in regions
            if min(s.end, r.end) > max(s.start, r.start)
        ]
        return _relabel(clipped)


def _link_speakers(preds: np.ndarray, total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Global speaker column for each local head of a window (-1 = silent head), matched on the overlap."""
    from scipy.optimize import linear_sum_assignment

    heads = preds.shape[1]
    mapping = np.full(heads, -1, dtype=int)
    seen = count > 0
    if seen.any() and total.shape[1]:
        previous = total[seen] / count[seen][:, None]
        score = preds[seen].T @ previous  # co-activity of local head × global speaker on the overlap
        rows, cols = linear_sum_assignment(-score)
        for r, c in zip(rows, cols, strict=True):
            if score[r, c] > 1.0:  # at least ~1 s of shared confident activity
                mapping[r] = c
    next_col = total.shape[1]
    for head in range(heads):
        if mapping[head] < 0 and preds[:, head].max(initial=0) >= 0.5:
            mapping[head] = next_col
            next_col += 1
    return mapping


def _mask_segments(mask: np.ndarray, frame: float, label: str, max_gap: float, min_len: float) -> list[SpeakerSegment]:
    """Runs of True frames as segments: short gaps bridged, then too-short runs dropped."""
    runs: list[list[float]] = []
    idx = np.flatnonzero(mask)
    for i in idx:
        start, end = i * frame, (i + 1) * frame
        if runs and start - runs[-1][1] <= max_gap + 1e-9:
            runs[-1][1] = end
        else:
            runs.append([start, end])
    return [SpeakerSegment(a, b, label) for a, b in runs if b - a >= min_len]


# -- transcription ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TranscriberConfig:
    max_clip_seconds: float = 20.0  # what the CTC model sees at once (memory is quadratic in attention)
    join_gap_seconds: float = 0.6  # regions closer than this are decoded together (word context)
    split_search_seconds: float = 3.0  # an over-long clip is cut at the quietest 20 ms in its last seconds
    batch_size: int = 4


class NemoTranscriber:
    """A NeMo CTC (or any ``ASRModel``) checkpoint: words with absolute times, decoded only inside regions."""

    def __init__(self, model_path: str | Path, config: TranscriberConfig | None = None) -> None:
        self.model_path = require_model_file(model_path)
        self.config = config or TranscriberConfig()
        self.name = f"nemo:{self.model_path.stem}"

    def _clips(self, samples: np.ndarray, regions: list[Segment]) -> list[Segment]:
        cfg = self.config
        joined: list[Segment] = []
        for r in regions:
            if joined and r.start - joined[-1].end < cfg.join_gap_seconds:
                joined[-1] = Segment(joined[-1].start, max(joined[-1].end, r.end))
            else:
                joined.append(r)
        clips: list[Segment] = []
        for r in joined:
            start = r.start
            while r.end - start > cfg.max_clip_seconds:
                cut = _quietest(
                    samples, start + cfg.max_clip_seconds - cfg.split_search_seconds, start + cfg.max_clip_seconds
                )
                clips.append(Segment(start, cut))
                start = cut
            clips.append(Segment(start, r.end))
        return [c for c in clips if c.duration >= 0.05]

    def transcribe(self, samples: np.ndarray, regions: list[Segment]) -> list[Word]:
        """Words with absolute times inside ``regions`` (nothing is decoded outside them)."""
        duration = len(samples) / SAMPLE_RATE
        clips = self._clips(samples, _clean_regions(regions, duration))
        if not clips:
            return []
        loaded = _restore("ASRModel", self.model_path)
        audio = [np.ascontiguousarray(_clip(samples, c.start, c.end), dtype=np.float32) for c in clips]
        with loaded.lock:
            hyps = loaded.model.transcribe(
                audio,
                batch_size=self.config.batch_size,
                return_hypotheses=True,
                timestamps=True,
                verbose=False,
            )
        if isinstance(hyps, tuple):  # RNNT models return (best, all) hypotheses
            hyps = hyps[0]
        # one output frame: a word whose CTC spike is a single frame still gets a duration
        frame = _output_frame_seconds(loaded.model)
        words: list[Word] = []
        for clip, hyp in zip(clips, hyps, strict=True):
            stamps = (getattr(hyp, "timestamp", None) or {}).get("word") or []
            for w in stamps:
                text = str(w.get("word", "")).strip()
                if not text:
                    continue
                start = min(clip.end - frame, clip.start + max(0.0, float(w.get("start", 0.0))))
                end = min(clip.end, max(start + frame, clip.start + float(w.get("end", 0.0))))
                words.append(Word(text=text, start=round(max(clip.start, start), 3), end=round(end, 3)))
        return words


def _output_frame_seconds(model: Any) -> float:
    """Seconds per encoder output frame (feature stride × subsampling)."""
    cfg = model.cfg
    return float(cfg.preprocessor.window_stride) * int(cfg.encoder.get("subsampling_factor", 1))


def _quietest(samples: np.ndarray, start: float, end: float) -> float:
    """Time of the lowest-energy 20 ms frame in [start, end) (a cut there rarely splits a word)."""
    frame = SAMPLE_RATE // 50
    piece = _clip(samples, start, end)
    n = len(piece) // frame
    if n == 0:
        return end
    energy = (piece[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
    return start + (int(np.argmin(energy)) + 0.5) * frame / SAMPLE_RATE
