"""From audio to commands: endpointing, recognition, and the decision to act or to drop.

:class:`Transcriber` cuts a stream into utterances and turns each into a :class:`Heard`: a
:class:`edgepilot.pilot.core.messages.Command` (source ``"voice"``) or a drop with the reason. A command is emitted only when the
words are exactly one phrase of the vocabulary, pilot.grammar accepts it, and the recogniser is sure enough: more sure
for commands that are dangerous when wrong (flips, emergency, moves over 1 m, turns over 180 degrees).

The end of an utterance is grammar-aware: after "take off" or "... centimeters" (nothing can follow) a short pause
ends it; after "up fifty" (a unit or "five" may follow) a longer one; after "turn right" (not yet a command) longer
still. The recogniser's final pass starts 50 ms into a pause that follows a command (``decode_ahead``), so when the
pause is long enough to be the end, the result is ready: most commands are emitted a fifth of a second after the
speaker stops.

:class:`VoiceListener` runs this on its own thread for the pilot loop and only publishes (a callback);
:func:`recognise_file` is the synchronous form for tests, the demo and ``edgepilot listen --wav``.
"""

from __future__ import annotations

import collections
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgepilot.pilot.core.errors import CommandRejected, EdgepilotError
from edgepilot.pilot.core.grammar import parse_command
from edgepilot.pilot.core.messages import MOVE_VERBS, TURN_VERBS, Command
from edgepilot.voice.audio import RATE, open_source
from edgepilot.voice.denoise import SpectralDenoiser
from edgepilot.voice.endpoint import FRAME, VoiceActivity
from edgepilot.voice.engines import make_recogniser
from edgepilot.voice.recogniser import Recogniser, SecondView
from edgepilot.voice.vocabulary import Status, Vocabulary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VoiceConfig:
    #: None: the recogniser's own default (``Recogniser.thresholds``); engines' confidences have different scales.
    min_confidence: float | None = None
    #: Flips, emergency, moves over ``risky_move_cm`` and turns over ``risky_turn_deg`` need this much.
    min_confidence_risky: float | None = None
    risky_move_cm: int = 100
    risky_turn_deg: int = 180
    preroll_s: float = 0.3  # audio kept from before speech was detected, so the first sound is not cut
    end_complete_s: float = 0.15  # pause that ends an utterance that is a command nothing can follow
    end_extendable_s: float = 0.35  # ... a command that may go on ("up fifty" -> "up fifty five")
    end_incomplete_s: float = 1.2  # ... words that are not a command yet ("go up ... fifty centimeters")
    max_utterance_s: float = 8.0
    feed_frames: int = 5  # hand audio to the recogniser 50 ms at a time
    trailing_s: float = 0.05  # pause after the last speech kept for the final pass (more only adds noise to decode)
    decode_ahead: bool = True  # start the final pass when a pause begins after a command
    #: Reduce steady noise before endpointing and recognition (voice.denoise); None: as the recogniser prefers.
    denoise: bool | None = None


@dataclass(frozen=True)
class Heard:
    """One utterance: the words, and the command, or why there is none."""

    words: tuple[str, ...]
    command: Command | None
    confidence: float
    t_speech_end: float  # seconds of audio from the start of the stream
    t_emit: float
    reason: str = ""  # why it was dropped
    file: str = ""
    wall_emit: float = 0.0  # time.monotonic() when decided, for latency measurements
    detail: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "file": self.file,
            "text": " ".join(self.words),
            "command": self.command.text if self.command else None,
            "confidence": round(self.confidence, 3),
            "t_speech_end": round(self.t_speech_end, 3),
            "t_emit": round(self.t_emit, 3),
        }


#: Heard wrongly, these make the drone hover or land, or drop a question the pilot asked ("no"): never harmful, and
#: near-homophones ("top", "hand") cannot be told from them anyway. They need only the normal confidence, not the fit test, so they work in any noise.
SAFE_WHEN_WRONG = ("stop", "land", "no")


def is_risky(command: Command, config: VoiceConfig) -> bool:
    """Commands that do harm when heard wrongly."""
    if command.verb in ("flip", "emergency"):
        return True
    if command.verb in MOVE_VERBS and isinstance(command.arg, int | float):
        return command.arg > config.risky_move_cm
    if command.verb in TURN_VERBS and isinstance(command.arg, int | float):
        return command.arg > config.risky_turn_deg
    return False


class _Recent:
    """The last ``limit`` samples of a stream, addressed by their position in the stream."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._chunks: collections.deque[np.ndarray] = collections.deque()
        self._start = 0  # stream position of the first kept sample
        self._end = 0

    def append(self, samples: np.ndarray) -> None:
        self._chunks.append(samples)
        self._end += len(samples)
        while self._end - self._start - len(self._chunks[0]) >= self.limit:
            self._start += len(self._chunks.popleft())

    def between(self, start: int, end: int) -> np.ndarray:
        """Samples [start, end) of the stream, or the part of them that is still kept."""
        kept = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)
        return kept[max(start - self._start, 0):max(end - self._start, 0)]


class Transcriber:
    """Cuts 16 kHz int16 audio into utterances and decides each one."""

    def __init__(self, recogniser: Recogniser, config: VoiceConfig | None = None) -> None:
        self.recogniser = recogniser
        self.vocab: Vocabulary = recogniser.vocab
        self.config = config or VoiceConfig()
        normal, risky = recogniser.thresholds
        self.min_confidence = normal if self.config.min_confidence is None else self.config.min_confidence
        self.min_confidence_risky = max(self.min_confidence, risky if self.config.min_confidence_risky is None
                                        else self.config.min_confidence_risky)
        self.fit_thresholds = recogniser.fit_thresholds

    def decide(self, words: tuple[str, ...], confidence: float, fit: float | None = None) -> tuple[Command | None,
                                                                                                   str]:
        command, reason = self.reading(words)
        if command is None:
            return None, reason
        return (command, "") if (reason := self.doubt(command, confidence, fit)) is None else (None, reason)

    @functools.lru_cache(maxsize=1024)  # noqa: B019 - a few hundred phrases; the Transcriber lives as long as its user
    def reading(self, words: tuple[str, ...]) -> tuple[Command | None, str]:
        """The command these words are, or why they are none (whatever the confidence)."""
        if not words:
            return None, "nothing recognised (no command fits the sound)"
        text = self.vocab.command_text(words)
        if text is None:
            return None, self.vocab.why_not(words)
        try:
            return parse_command(text, source="voice"), ""
        except CommandRejected as exc:
            return None, str(exc)

    def doubt(self, command: Command, confidence: float, fit: float | None) -> str | None:
        """Why the engine is not sure enough of ``command`` to act on it, or None."""
        risky = is_risky(command, self.config)
        needed = self.min_confidence_risky if risky else self.min_confidence
        if confidence < needed:
            return f"not sure enough ({confidence:.2f} < {needed:.2f})"
        fit_needed = self.fit_thresholds
        if fit_needed is not None and command.verb not in SAFE_WHEN_WRONG:
            least = fit_needed[1] if risky else fit_needed[0]
            if fit is None or fit < least:
                shown = "unknown" if fit is None else f"{fit:.1f}"
                return f"sounds like speech that is no command (fit {shown} < {least:.1f})"
        return None

    def _end_pause_frames(self, status: Status) -> int:
        seconds = {Status.COMPLETE: self.config.end_complete_s,
                   Status.EXTENDABLE: self.config.end_extendable_s}.get(status, self.config.end_incomplete_s)
        return max(1, round(seconds * RATE / FRAME))

    def run(self, chunks: Iterable[np.ndarray], file: str = "") -> Iterator[Heard]:
        """Yield a :class:`Heard` for every utterance in the stream (commands and drops)."""
        config = self.config
        vad = VoiceActivity()
        preroll: collections.deque[np.ndarray] = collections.deque(maxlen=max(1, round(config.preroll_s * 100)))
        batch: list[np.ndarray] = []
        leftover = np.zeros(0, dtype=np.int16)
        position = 0  # samples consumed
        in_utterance = False
        utterance_start = 0
        first_sample = 0  # stream position of the utterance's first sample (with the pre-roll)
        end_after: int | None = None  # silence frames that end this utterance
        trailing = round(config.trailing_s * RATE)

        def keep_samples() -> int:
            return (vad.last_speech_frame + 1) * FRAME + trailing - first_sample

        def flush() -> None:
            if batch:
                self.recogniser.feed(np.concatenate(batch))
                batch.clear()

        def second_view(keep: int) -> SecondView | None:
            """The first ``keep`` samples of the utterance, from the raw audio through the whole-utterance denoiser
            (SpectralDenoiser.clean_utterance), made only if the recogniser asks; without the start when the stream
            began less than the denoiser's delay before the utterance."""
            if denoiser is None:
                return None
            start = first_sample - denoiser.delay  # the denoised stream lags the raw one
            return lambda: denoiser.clean_utterance(raw.between(start, start + keep))

        def finish(end_sample: int) -> Heard:
            flush()
            hypothesis = self.recogniser.finish(keep_samples(), second_view(keep_samples()))
            vad.end_utterance()
            command, reason = self.decide(hypothesis.words, hypothesis.confidence, hypothesis.fit)
            heard = Heard(hypothesis.words, command, hypothesis.confidence, end_sample / RATE, position / RATE,
                          reason, file, time.monotonic(), hypothesis.detail)
            if command is None:
                log.info("not understood: %r (%s)", " ".join(heard.words), reason)
            else:
                log.info("heard %r -> %s (confidence %.2f)", " ".join(heard.words), command.text, heard.confidence)
            return heard

        wanted = config.denoise if config.denoise is not None else getattr(self.recogniser, "denoise", True)
        denoiser = SpectralDenoiser() if wanted else None
        raw = _Recent(round((config.preroll_s + config.max_utterance_s + 1.0) * RATE))
        self.recogniser.new_stream()
        for chunk in chunks:
            chunk = np.asarray(chunk, dtype=np.int16)
            if denoiser is not None:
                raw.append(chunk)
                chunk = denoiser.process(chunk)
            samples = np.concatenate([leftover, chunk])
            whole = len(samples) // FRAME * FRAME
            leftover = samples[whole:]
            for start in range(0, whole, FRAME):
                frame = samples[start:start + FRAME]
                speech = vad.push(frame)
                position += FRAME
                if not in_utterance:
                    preroll.append(frame)
                    if vad.in_speech:
                        self.recogniser.start()
                        first_sample = position - len(preroll) * FRAME
                        batch.extend(preroll)
                        preroll.clear()
                        in_utterance, utterance_start, end_after = True, position, None
                    continue
                batch.append(frame)
                if len(batch) >= config.feed_frames:
                    flush()
                too_long = position - utterance_start >= config.max_utterance_s * RATE
                if speech and not too_long:
                    end_after = None
                    continue
                silence = vad.silence_frames
                # Ask the recogniser what it has heard 50 ms into the pause, then every 100 ms.
                if silence >= 5 and (end_after is None or silence % 10 == 5):
                    flush()
                    status, _ = self.vocab.read(self.recogniser.partial())
                    end_after = self._end_pause_frames(status)
                    if silence == 5 and config.decode_ahead and status in (Status.COMPLETE, Status.EXTENDABLE):
                        self.recogniser.decode_ahead(keep_samples(), second_view(keep_samples()))
                if too_long or (end_after is not None and silence >= end_after):
                    yield finish((vad.last_speech_frame + 1) * FRAME)
                    in_utterance = False
        if in_utterance:  # the stream stopped mid-utterance or right after it
            if denoiser is not None:  # the denoiser still holds the last 16 ms
                leftover = np.concatenate([leftover, denoiser.process(np.zeros(denoiser.delay, dtype=np.int16))])
            if len(leftover):
                batch.append(leftover)
                position += len(leftover)
            yield finish((vad.last_speech_frame + 1) * FRAME)


def recognise_file(path: str | Path, engine: str | None = None, lang: str = "en", model: str | Path | None = None,
                   realtime: bool = False, recogniser: Recogniser | None = None, config: VoiceConfig | None = None,
                   include_dropped: bool = False) -> list[dict]:
    """Recognise a WAV file; return one dict per emitted command (the ``--json`` fields plus ``reason`` for drops
    when ``include_dropped``). Pass ``recogniser`` to reuse a loaded model across files."""
    from edgepilot.voice.audio import WavSource

    recogniser = recogniser or make_recogniser(engine, Vocabulary.load(lang), model)
    source = WavSource(path, realtime=realtime)
    results = []
    try:
        for heard in Transcriber(recogniser, config).run(source.chunks(), file=str(path)):
            if heard.command is not None or include_dropped:
                results.append({**heard.to_json(), **({"reason": heard.reason} if include_dropped else {})})
    finally:
        source.close()
    return results


class VoiceListener:
    """Recognise commands from the microphone or a WAV file on a thread of its own; publish them to a callback.

    ``source_spec`` is ``"mic"``, ``"mic:DEVICE"`` or a WAV path. The model is loaded and the source opened in the
    constructor, so a missing model or microphone is an error right away, in the caller's thread. ``start(on_command)``
    calls ``on_command(command, info)`` from the listener thread for every emitted command (``info`` is the
    ``--json`` dict); ``on_drop(info)`` (optional) for every utterance that was not acted on. ``stop()`` ends it,
    ``join()`` waits and re-raises an error the thread hit.
    """

    def __init__(self, source_spec: str, engine: str | None = None, lang: str = "en", model: str | Path | None = None,
                 realtime: bool = True, config: VoiceConfig | None = None, process: bool = False) -> None:
        self.recogniser = make_recogniser(engine, Vocabulary.load(lang), model)
        self.source = open_source(source_spec, realtime=realtime)
        self.source_spec = source_spec
        self.config = config
        #: Decode in a process of its own (audio in, what was heard out): a decode holds Python's lock for up to a
        #: second, which would shake a control loop in this process. The source (and muting) stay here.
        self._engine = (engine, lang, model) if process else None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.error: BaseException | None = None
        #: True while the pilot's own voice may be in the microphone (voice/tts.py ``Speaker.speaking``): that audio
        #: is replaced by silence, so the pilot never takes what it says for a command.
        self.muted: Callable[[], bool] = lambda: False

    def start(self, on_command: Callable[[Command, dict], None],
              on_drop: Callable[[dict], None] | None = None) -> None:
        if self._thread is not None:
            raise RuntimeError("this VoiceListener was already started")
        self._thread = threading.Thread(target=self._run, args=(on_command, on_drop), name="voice", daemon=True)
        self._thread.start()

    def _run(self, on_command: Callable[[Command, dict], None], on_drop: Callable[[dict], None] | None) -> None:
        try:
            if self._engine is None:
                heard_all = ((h.command, {**h.to_json(), "reason": h.reason})
                             for h in Transcriber(self.recogniser, self.config).run(self._chunks(), file=self.source_spec))
            else:
                heard_all = self._heard_in_process()
            for command, info in heard_all:
                if command is not None:
                    on_command(command, info)
                elif on_drop is not None:
                    on_drop(info)
        except EdgepilotError as exc:
            self.error = exc
            log.error("voice stopped: %s", exc)
        except Exception as exc:  # noqa: BLE001 - report on join() instead of dying silently on a thread
            self.error = exc
            log.exception("voice stopped by an unexpected error")
        finally:
            self.source.close()

    def _heard_in_process(self) -> Iterator[tuple[Command | None, dict]]:
        """What the recogniser process heard; this thread's feeder sends it the audio as it comes."""
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # no fork: this process has threads (camera, perception, link)
        audio_out, audio_in = ctx.Pipe(duplex=False)
        heard_out, heard_in = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_recognise, args=(audio_out, heard_in, *self._engine, self.config, self.source_spec),
                            name="edgepilot-voice", daemon=True)
        child.start()
        audio_out.close()
        heard_in.close()

        def feed() -> None:
            try:
                for chunk in self._chunks():
                    audio_in.send(chunk)
                audio_in.send(None)
            except (BrokenPipeError, OSError):
                pass  # the recogniser stopped; its error comes through the other pipe

        feeder = threading.Thread(target=feed, name="voice-feed", daemon=True)
        feeder.start()
        try:
            while True:
                try:
                    message = heard_out.recv()
                except EOFError:
                    child.join(timeout=2.0)
                    if child.exitcode not in (0, None):
                        raise EdgepilotError(f"the speech recogniser process stopped (exit {child.exitcode})") from None
                    return
                if message is None:
                    return
                if isinstance(message, str):
                    raise EdgepilotError(message)
                yield message
        finally:
            self._stop.set()
            try:
                audio_in.send(None)
            except (BrokenPipeError, OSError):
                pass
            child.join(timeout=5.0)
            if child.is_alive():
                child.kill()
            audio_in.close()
            heard_out.close()

    def _chunks(self) -> Iterator[np.ndarray]:
        for chunk in self.source.chunks():
            if self._stop.is_set():
                return
            yield np.zeros_like(chunk) if self.muted() else chunk

    def stop(self) -> None:
        self._stop.set()
        self.source.close()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
        if self.error is not None:
            raise self.error

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> VoiceListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.join(timeout=5.0)


def _recognise(audio: object, heard: object, engine: str | None, lang: str, model: str | Path | None,
               config: VoiceConfig | None, file: str) -> None:
    """The recogniser process: audio chunks in (None ends them), ``(command, info)`` out, then None; an error is
    sent as its one-line text. It runs at a lower priority than the pilot: where they share a core, a decode waits
    for the control loop, not the loop for the decode."""
    import os

    logging.basicConfig(level=logging.WARNING)
    os.nice(5)

    def chunks() -> Iterator[np.ndarray]:
        while True:
            try:
                chunk = audio.recv()
            except EOFError:
                return
            if chunk is None:
                return
            yield chunk

    try:
        transcriber = Transcriber(make_recogniser(engine, Vocabulary.load(lang), model), config)
        for h in transcriber.run(chunks(), file=file):
            heard.send((h.command, {**h.to_json(), "reason": h.reason}))
        heard.send(None)
    except EdgepilotError as exc:
        heard.send(str(exc))
    except Exception as exc:  # noqa: BLE001 - the parent reports it in one line
        heard.send(f"the speech recogniser failed: {type(exc).__name__}: {exc}")
