"""PocketSphinx 5 with its bundled US English model, restricted to the command word graph.

Two decoders share the model files. A streaming one follows the speech and tells the endpointer what has been said
so far (and, at the end, gives a second opinion). When the utterance ends, a second one decodes it again as a whole: with the cepstral mean of *this* utterance
(batch CMN), so the result does not depend on what was heard before (with the streaming decoder's running mean, a
noisy file after a clean one lost most of its commands), and with ordinary words competing with the commands so
that speech which is not a command has somewhere to go. Its best path, posterior and n-best list give the confidence.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from pilot.errors import InputError, ModelError
from voice.engines import Hypothesis
from voice.grammar_export import word_graph
from voice.vocabulary import Vocabulary

#: How strongly ordinary words compete with the commands (see voice.grammar_export.word_graph); None turns it off.
REJECTION_WEIGHT: float | None = 0.01
NBEST = 10
# Confidence = min(1, 2 x lattice posterior of the best path) x (1 - exp(-margin / MARGIN_SCALE)), where the margin
# is the log-score gap to the best n-best entry that means a different command ("fifty" against "fifteen"). The
# posterior is doubled because the lattice often holds the same words twice (with and without a trailing silence),
# which halves it. Speech that is no command at all is caught by the rejection words instead: the acoustic fit
# (logged as "fit") did not separate it from short commands on the test sets.
MARGIN_SCALE = 100.0
#: (normal, risky) minimum confidence. On the noisy test set 0.85 leaves 1 wrong command in 100 (0.5 left 6).
THRESHOLDS = (0.85, 0.95)
# When the streaming decoder (its own grammar without rejection words, its own running cepstral mean) heard the same
# command, the confidence is at least this: enough for ordinary commands, not for risky ones. On the test sets no
# wrong command had this agreement, while it recovered 7 clean and 4 noisy commands the margin alone dropped.
AGREEMENT_CONFIDENCE = 0.9
_FILLER = ("<", "[", "+")


def _real_words(text: str) -> tuple[str, ...]:
    return tuple(w.split("(")[0] for w in text.split() if not w.startswith(_FILLER))


class PocketSphinxRecogniser:
    name = "pocketsphinx"
    thresholds = THRESHOLDS

    def __init__(self, vocab: Vocabulary, model: str | Path | None = None,
                 rejection_weight: float | None = REJECTION_WEIGHT) -> None:
        if vocab.code != "en":
            raise InputError(f"PocketSphinx ships an English model only; for --lang {vocab.code} use --engine vosk")
        try:
            import pocketsphinx
        except ImportError:
            raise ModelError("PocketSphinx is not installed (pip install pocketsphinx)") from None
        self.vocab = vocab
        options: dict = dict(loglevel="ERROR", bestpath=True, beam=1e-30, wbeam=1e-20, topn=8)
        if model is not None:
            model = Path(model)
            if not (model / "mdef").is_file():
                raise ModelError(f"{model}: not a PocketSphinx acoustic model directory (no 'mdef' file)")
            options["hmm"] = str(model)
        try:
            self._stream = pocketsphinx.Decoder(**options, cmn="live")
            self._final = pocketsphinx.Decoder(**options, cmn="batch")
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"PocketSphinx could not load its model: {exc}") from None
        missing = sorted(w for w in vocab.words | vocab.rejection_words if self._final.lookup_word(w) is None)
        if missing:
            raise ModelError(f"words missing from PocketSphinx's dictionary: {', '.join(missing)}")
        for decoder, weight in ((self._stream, None), (self._final, rejection_weight)):
            graph, weights = word_graph(vocab, weight)
            decoder.add_fsg("commands", decoder.create_fsg("commands", graph.START, graph.FINAL,
                                                           graph.transitions(weights)))
            decoder.activate_search("commands")
        self._logmath = self._final.get_logmath()
        self._initial_cmn = self._stream.get_cmn()
        self._audio: list[np.ndarray] = []

    def new_stream(self) -> None:
        self._stream.set_cmn(self._initial_cmn)

    def start(self) -> None:
        self._audio = []
        self._stream.start_utt()

    def feed(self, pcm: np.ndarray) -> None:
        pcm = np.ascontiguousarray(pcm, dtype="<i2")
        self._audio.append(pcm)
        self._stream.process_raw(pcm.tobytes(), False, False)

    def partial(self) -> tuple[str, ...]:
        hyp = self._stream.hyp()
        return _real_words(hyp.hypstr) if hyp is not None else ()

    def finish(self) -> Hypothesis:
        self._stream.end_utt()
        streamed = self._stream.hyp()
        streamed_meaning = self.vocab.command_text(_real_words(streamed.hypstr)) if streamed is not None else None
        audio = np.concatenate(self._audio) if self._audio else np.zeros(0, dtype="<i2")
        decoder = self._final
        decoder.start_utt()
        decoder.process_raw(audio.tobytes(), False, True)
        decoder.end_utt()
        # Keep the streaming decoder's mean close to this stream's: its partial results only steer the endpointer.
        self._stream.set_cmn(decoder.get_cmn())
        hyp = decoder.hyp()
        if hyp is None:
            return Hypothesis((), 0.0, {"reason": "no hypothesis"})
        words = _real_words(hyp.hypstr)
        speech_frames = sum(seg.end_frame - seg.start_frame + 1 for seg in decoder.seg()
                            if not seg.word.startswith(_FILLER))
        score = self._logmath.log(hyp.best_score) if hyp.best_score > 0 else -math.inf
        fit = score / max(speech_frames, 1)
        posterior = float(hyp.prob)
        meaning = self.vocab.command_text(words)
        best_score = None
        margin = math.inf
        for entry, _ in zip(decoder.nbest(), range(NBEST), strict=False):
            if entry is None:
                break
            entry_score = self._logmath.log(entry.score) if entry.score > 0 else -math.inf
            best_score = entry_score if best_score is None else best_score
            if self.vocab.command_text(_real_words(entry.hypstr)) != meaning:
                margin = best_score - entry_score
                break
        confidence = min(1.0, 2.0 * posterior) * (1.0 - math.exp(-margin / MARGIN_SCALE))
        agree = meaning is not None and streamed_meaning == meaning
        if agree:
            confidence = max(confidence, AGREEMENT_CONFIDENCE)
        return Hypothesis(words, confidence, {"fit": round(fit, 2), "posterior": round(posterior, 3),
                                              "margin": margin if math.isfinite(margin) else None,
                                              "agree": agree})
