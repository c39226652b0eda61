"""What every recogniser offers (:class:`Recogniser`) and returns (:class:`Hypothesis`); the engines are in
:mod:`edgepilot.voice.engines` and :mod:`edgepilot.voice.pocketsphinx_engine`.

A recogniser decodes one utterance at a time: ``start()``, ``feed()`` 16 kHz int16 audio, ``partial()`` for the words
so far (the endpointer asks), ``finish()`` for the final words and a confidence in [0, 1]. ``decode_ahead()`` may do
the work of ``finish()`` early, while the listener waits to be sure the pause is the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edgepilot.voice.vocabulary import Vocabulary


@dataclass(frozen=True)
class Hypothesis:
    words: tuple[str, ...]
    confidence: float  # 0..1; how sure the engine is of exactly these words rather than other commands
    detail: dict
    #: How much better these words explain the sound than free speech would (the engine's own units, compared with
    #: its ``fit_thresholds``): low for speech that is no command forced into the command grammar. None: not measured.
    fit: float | None = None


#: Makes the utterance's second view (see Recogniser.finish) when called: only engines that use it pay for it.
SecondView = Callable[[], np.ndarray]


class Recogniser(Protocol):
    name: str
    vocab: Vocabulary
    #: (normal, risky) minimum confidence for a command: each engine's confidence has its own scale.
    thresholds: tuple[float, float]
    #: (normal, risky) minimum ``Hypothesis.fit``; None for engines that reject free speech otherwise (Vosk's [unk]).
    fit_thresholds: tuple[float, float] | None
    #: Whether the engine hears better through voice.denoise (the listener's default).
    denoise: bool

    def new_stream(self) -> None:
        """A new audio stream begins (another file, a new microphone session): forget channel adaptation."""

    def start(self) -> None: ...

    def feed(self, pcm: np.ndarray) -> None: ...

    def partial(self) -> tuple[str, ...]: ...

    def decode_ahead(self, keep_samples: int | None = None, second_view: SecondView | None = None) -> None:
        """The speaker paused after words that make a command: prepare ``finish(keep_samples, second_view)`` now."""
        ...

    def finish(self, keep_samples: int | None = None, second_view: SecondView | None = None) -> Hypothesis:
        """The utterance ended. ``keep_samples``: how much of the fed audio is speech (plus a little pause) and
        worth a final decoding pass; engines that decode as they go may ignore it. ``second_view()``: the same
        audio denoised another way (whole-utterance; it may lack the first few ms), for engines that check their words
        on both."""
        ...
