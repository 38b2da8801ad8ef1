"""Audio in, a diarized, word-timed ``Call`` out: VAD → diarization (or channels) → ASR → turns → roles."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path

import numpy as np

from callqa.errors import BadInput
from callqa.schemas import Call, Speaker, Turn, Word
from callqa.settings import Settings, SpeechSettings, get_settings
from callqa.speech.audio import Audio, channels_are_separate_speakers
from callqa.speech.interfaces import Diarizer, SpeakerEmbedder, Transcriber
from callqa.speech.roles import RoleAssignment, roles_from_channels, roles_from_text, roles_from_voiceprint
from callqa.speech.segments import Segment, SpeakerSegment
from callqa.speech.transcript import SpeakerTurn, assign_words, words_to_turns
from callqa.speech.vad import SileroVAD, VADConfig
from callqa.speech.voiceprints import VoiceprintStore

log = logging.getLogger(__name__)

VOICEPRINT_THRESHOLD = 0.5
MIN_EMBED_SECONDS = 1.0


@dataclass
class SpeechResult:
    call: Call
    segments: list[SpeakerSegment]  # diarization labels ("spk0", "ch1"...)
    roles: RoleAssignment
    separate_channels: bool
    timings: dict[str, float] = field(default_factory=dict)


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - started


class SpeechPipeline:
    """The speech stages behind one call; heavy models are built only when a call needs them."""

    def __init__(
        self,
        settings: SpeechSettings,
        vad: SileroVAD,
        transcriber: Callable[[], Transcriber],
        diarizer: Callable[[], Diarizer],
        embedder: Callable[[], SpeakerEmbedder] | None = None,
        voiceprints: VoiceprintStore | None = None,
        asking_score: Callable[[str], float] | None = None,
    ) -> None:
        self.settings = settings
        self.vad = vad
        self._transcriber = transcriber
        self._diarizer = diarizer
        self._embedder = embedder
        self.voiceprints = voiceprints
        self.asking_score = asking_score

    @cached_property
    def transcriber(self) -> Transcriber:
        return self._transcriber()

    @cached_property
    def diarizer(self) -> Diarizer:
        return self._diarizer()

    @cached_property
    def embedder(self) -> SpeakerEmbedder | None:
        return self._embedder() if self._embedder else None

    # -- the stages ------------------------------------------------------------------------
    def _channels(self, audio: Audio, timings: dict[str, float]) -> tuple[list[SpeakerSegment], list[tuple[str, Word]]]:
        segments: list[SpeakerSegment] = []
        words: list[tuple[str, Word]] = []
        for c in range(audio.channels):
            label = f"ch{c}"
            with _timed(timings, "vad"):
                regions = self.vad(audio.samples[c])
            segments += [SpeakerSegment(r.start, r.end, label) for r in regions]
            with _timed(timings, "asr"):
                words += [(label, w) for w in self.transcriber.transcribe(audio.samples[c], regions)]
        return segments, words

    def _mono(
        self, samples: np.ndarray, timings: dict[str, float]
    ) -> tuple[list[SpeakerSegment], list[tuple[str, Word]]]:
        with _timed(timings, "vad"):
            regions = self.vad(samples)
        if not regions:
            raise BadInput("no speech found in the recording")
        with _timed(timings, "diarization"):
            segments = self.diarizer(samples, regions, self.settings.num_speakers)
        with _timed(timings, "asr"):
            words = self.transcriber.transcribe(samples, regions)
        return segments, assign_words(words, segments)

    def _speaker_embeddings(
        self, audio: Audio, segments: list[SpeakerSegment], separate: bool
    ) -> dict[str, np.ndarray]:
        assert self.embedder is not None
        out: dict[str, np.ndarray] = {}
        for label in sorted({s.speaker for s in segments}):
            regions = [Segment(s.start, s.end) for s in segments if s.speaker == label]
            if sum(r.duration for r in regions) < MIN_EMBED_SECONDS:
                continue
            samples = audio.samples[int(label[2:])] if separate else audio.mono()
            out[label] = self.embedder.embed(samples, regions)
        return out

    def _roles(
        self,
        audio: Audio,
        segments: list[SpeakerSegment],
        turns: list[SpeakerTurn],
        separate: bool,
        manager_id: str | None,
        agent_channel: int | None,
    ) -> RoleAssignment:
        labels = sorted({s.speaker for s in segments} | {t.speaker for t in turns})
        if separate and agent_channel is not None:
            return roles_from_channels(labels, agent_channel)
        if manager_id and self.voiceprints is not None and self._embedder is not None:
            print_ = self.voiceprints.load(manager_id, model=self.embedder.name)
            if print_ is not None:
                found = roles_from_voiceprint(
                    self._speaker_embeddings(audio, segments, separate),
                    print_.array(),
                    threshold=VOICEPRINT_THRESHOLD,
                )
                if found is not None:
                    return found
        asks = [self.asking_score(t.text) for t in turns] if self.asking_score else None
        return roles_from_text(turns, asks)

    def run(
        self,
        audio: Audio,
        *,
        call_id: str,
        started_at: datetime | None = None,
        manager_id: str | None = None,
        agent_channel: int | None = None,
    ) -> SpeechResult:
        """Transcribe and diarize one recording into a call with AGENT/CLIENT turns.

        ``agent_channel`` is telephony metadata for stereo recordings (one speaker per channel).
        """
        timings: dict[str, float] = {}
        if agent_channel is not None and not 0 <= agent_channel < audio.channels:
            raise BadInput(f"agent channel {agent_channel} does not exist in a {audio.channels}-channel recording")
        separate = audio.channels == 2 and (agent_channel is not None or channels_are_separate_speakers(audio))
        if separate:
            segments, words = self._channels(audio, timings)
        else:
            segments, words = self._mono(audio.mono(), timings)
        if not words:
            raise BadInput("no words were recognised in the recording")
        speaker_turns = words_to_turns(words)
        with _timed(timings, "roles"):
            roles = self._roles(audio, segments, speaker_turns, separate, manager_id, agent_channel)
        turns = [
            Turn(
                speaker=roles.roles.get(t.speaker, Speaker.UNKNOWN),
                text=t.text,
                start=round(t.start, 3),
                end=round(t.end, 3),
                words=t.words,
            )
            for t in speaker_turns
        ]
        if not any(t.text.strip() for t in turns):
            raise BadInput("no words were recognised in the recording")
        call = Call(call_id=call_id, started_at=started_at, manager_id=manager_id, channels=audio.channels, turns=turns)
        return SpeechResult(call=call, segments=segments, roles=roles, separate_channels=separate, timings=timings)


def agent_voice(pipeline: SpeechPipeline, audio: Audio, agent_channel: int | None) -> tuple[np.ndarray, float]:
    """The manager's voice in one recording as (embedding, seconds of speech): his channel, or the
    speaker that role assignment (without voiceprints) calls the agent."""
    if pipeline.embedder is None:
        raise BadInput("voiceprints need a speaker embedding model")
    if agent_channel is not None and audio.channels == 2:
        samples = audio.samples[agent_channel]
        regions = pipeline.vad(samples)
    else:
        result = pipeline.run(audio, call_id="enrol", agent_channel=None)
        agents = {label for label, role in result.roles.roles.items() if role == Speaker.AGENT}
        regions = [Segment(s.start, s.end) for s in result.segments if s.speaker in agents]
        samples = audio.samples[int(next(iter(agents))[2:])] if result.separate_channels else audio.mono()
    seconds = sum(r.duration for r in regions)
    if seconds < MIN_EMBED_SECONDS:
        raise BadInput("too little speech of the manager to enrol from this recording")
    return pipeline.embedder.embed(samples, regions), seconds


def build_speech_pipeline(
    settings: Settings | None = None, asking_score: Callable[[str], float] | None = None
) -> SpeechPipeline:
    """The default speech stages from settings: Silero VAD, the configured ASR and diarizer (local paths)."""
    settings = settings or get_settings()
    sp = settings.speech
    models = settings.models_dir

    def transcriber() -> Transcriber:
        from callqa.speech.lexicon import CorrectedTranscriber, load_lexicon

        lexicon = sp.asr_lexicon
        inner: Transcriber
        if sp.asr == "nemo":
            from callqa.speech.nemo_backends import NemoTranscriber

            model = sp.nemo_asr_model or models / "fastconformer_ctc_tiny.nemo"
            inner = NemoTranscriber(model)
            beside = Path(model).with_suffix(".lexicon.txt")
            lexicon = lexicon or (beside if beside.is_file() else None)
        else:
            from callqa.speech.asr import FasterWhisperTranscriber, packaged_whisper_base

            inner = FasterWhisperTranscriber(sp.whisper_model or packaged_whisper_base(models))
        if lexicon is None or not sp.use_asr_lexicon:
            return inner
        return CorrectedTranscriber(inner, load_lexicon(str(lexicon)))

    def diarizer() -> Diarizer:
        if sp.diarizer == "sortformer":
            from callqa.speech.nemo_backends import SortformerDiarizer

            return SortformerDiarizer(sp.sortformer_model or models / "sortformer_tiny.nemo")
        from callqa.speech.nemo_backends import NemoClusteringDiarizer

        return NemoClusteringDiarizer(speaker_model(sp, models))

    def embedder() -> SpeakerEmbedder:
        from callqa.speech.nemo_backends import TitaNetEmbedder

        return TitaNetEmbedder(speaker_model(sp, models))

    vad = SileroVAD(
        VADConfig(
            threshold=sp.vad_threshold,
            min_speech_ms=sp.vad_min_speech_ms,
            min_silence_ms=sp.vad_min_silence_ms,
            speech_pad_ms=sp.vad_speech_pad_ms,
        )
    )
    return SpeechPipeline(
        sp, vad, transcriber, diarizer, embedder, VoiceprintStore(settings.home / "voiceprints"), asking_score
    )


def speaker_model(sp: SpeechSettings, models: Path) -> Path:
    """The TitaNet speaker model shared by clustering diarization and voiceprints."""
    return sp.speaker_model or models / "titanet_small.nemo"
