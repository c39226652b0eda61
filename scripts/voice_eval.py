"""The speech team's evaluation behind scripts/bench_voice.py: every voice group in quiet (whisper to shout) and in four
noises, phrases that are no valid command, and real people's speech that holds no command; thresholds chosen
leaving one voice group out.

Each file is decoded once; what the recogniser heard (words, confidence, fit) is kept, so the decision can be taken
again under other thresholds without decoding again (the endpointing does not depend on the thresholds).
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
VOICES = ROOT / "scripts" / "cache" / "voice-groups"
SNR_DB = 13.0
#: Speaking levels cycled over the quiet phrases: a whisper (-20 dB), normal, a shout (+8 dB, clipping).
LEVELS = (0.1, 1.0, 2.5)
PAD_S = 0.4
#: Voice groups used for tuning; every other group is held out (and each is left out in turn below).
TUNING_GROUPS = ("flite-tuned",)
MOVES = {"up", "down", "left", "right", "forward", "back", "cw", "ccw", "flip", "speed"}


def voice_jobs(every: int = 1) -> list[dict]:
    from voice_data import NOISES

    if not (VOICES / "manifest.json").is_file():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_test_audio.py"), "--voices", str(VOICES)],
                       check=True, capture_output=True)
    entries = json.loads((VOICES / "manifest.json").read_text(encoding="utf-8"))
    voices = list(dict.fromkeys(e["voice"] for e in entries))
    jobs = []
    for number, entry in enumerate(entries):
        if number % every:
            continue
        index = voices.index(entry["voice"])
        base = {"group": entry["group"], "voice": entry["voice"], "path": str(VOICES / entry["file"]),
                "expected": entry["expected"], "set": entry["set"], "text": entry["text"]}
        jobs.append({**base, "condition": "quiet", "gain": LEVELS[number % len(LEVELS)]})
        jobs.append({**base, "condition": NOISES[(number + index) % len(NOISES)], "gain": 1.0})
    return jobs


def real_speech_jobs(every: int = 1) -> list[dict]:
    from voice_data import real_speech_root

    root = real_speech_root()
    if root is None:
        return []
    return [{"group": f"real {folder}", "voice": path.stem, "path": str(path), "expected": [], "set": "real",
             "text": "", "condition": "as recorded", "gain": 1.0}
            for folder in ("no-command", "keywords") for path in sorted((root / folder).glob("*.flac"))[::every]]


def talkers() -> list[np.ndarray]:
    """Babble: real people's speech if present, else the committed synthetic sentences that are no command."""
    from voice_data import DATA, read_audio, read_wav, real_speech_root

    root = real_speech_root()
    if root is not None:
        return [read_audio(p) for p in sorted((root / "no-command").glob("*.flac"))[::10]]
    return [read_wav(p) for p in sorted((DATA / "ood").glob("*.wav"))]


def job_audio(job: dict, babble: list[np.ndarray]) -> np.ndarray:
    from voice_data import mix, noise, read_audio, seed_of, to_int16

    samples = read_audio(Path(job["path"])).astype(np.float64) * job["gain"]
    if job["set"] == "real":
        return to_int16(samples)
    pad = np.zeros(int(PAD_S * 16000))
    samples = np.concatenate([pad, samples, pad])
    if job["condition"] == "quiet":
        # A quiet room's hiss (about 60 dB below a normal voice), not digital silence.
        return to_int16(samples + np.random.default_rng(seed_of(job["path"])).standard_normal(len(samples)) * 3)
    return mix(samples, noise(job["condition"], len(samples), seed_of(job["path"] + job["condition"]), babble),
               SNR_DB)


def decode(jobs: list[dict], engine: str = "pocketsphinx") -> list[dict]:
    from voice_data import chunks

    from edgepilot.voice.engines import make_recogniser
    from edgepilot.voice.listener import Transcriber
    from edgepilot.voice.vocabulary import Vocabulary

    if engine == "pocketsphinx-plain":  # as before the out-of-grammar paths, for before/after tables
        from edgepilot.voice.pocketsphinx_engine import PocketSphinxRecogniser

        recogniser = PocketSphinxRecogniser(Vocabulary.load("en"), out_of_grammar=False)
    else:
        recogniser = make_recogniser(engine, Vocabulary.load("en"))
    babble = talkers() if any(j["condition"] == "babble" for j in jobs) else []
    out = []
    for job in jobs:
        heard = Transcriber(recogniser).run(chunks(job_audio(job, babble)))
        out.append({**job, "heard": [{"words": list(h.words), "confidence": h.confidence,
                                      "fit": h.detail.get("fit") if h.detail else None,
                                      "command": h.command.text if h.command else None, "reason": h.reason}
                                     for h in heard]})
    return out


def decode_parallel(jobs: list[dict], workers: int, engine: str) -> list[dict]:
    """Decode in ``workers`` processes of their own."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        procs = []
        for k in range(workers):
            path = Path(tmp) / f"jobs{k}.json"
            path.write_text(json.dumps(jobs[k::workers]), encoding="utf-8")
            procs.append((subprocess.Popen([sys.executable, __file__, str(path), engine]), path))
        results = []
        for proc, path in procs:
            if proc.wait() != 0:
                raise SystemExit(f"a decoding worker failed ({proc.returncode})")
            results += json.loads(path.with_suffix(".out").read_text(encoding="utf-8"))
    return results


# -- deciding again under other thresholds ---------------------------------------------------------------------------


class Decider:
    """The listener's decision (Transcriber.decide) under given thresholds, on what was heard."""

    def __init__(self, engine: str = "pocketsphinx") -> None:
        from edgepilot.voice.listener import Transcriber
        from edgepilot.voice.vocabulary import Vocabulary

        class _Heard:  # the recogniser attributes Transcriber reads
            name = engine
            vocab = Vocabulary.load("en")
            thresholds = (0.0, 0.0)
            fit_thresholds = None

        self.transcriber = Transcriber(_Heard())
        self.cache: dict = {}

    def commands(self, result: dict, thresholds: tuple | None) -> list[str]:
        if thresholds is None:
            return [h["command"] for h in result["heard"] if h["command"]]
        t = self.transcriber
        t.min_confidence, t.min_confidence_risky = thresholds[0], max(thresholds[0], thresholds[1])
        t.fit_thresholds = thresholds[2:] if thresholds[2] is not None else None
        out = []
        for h in result["heard"]:
            command, _ = t.reading(tuple(h["words"]))
            if command is not None and t.doubt(command, h["confidence"], h["fit"]) is None:
                out.append(command.text)
        return out


def outcome(expected: list[str], got: list[str]) -> str:
    if got == expected:
        return "right"
    if any(c not in expected for c in got):
        return "wrong"
    return "dropped"


def tally(results: list[dict], decider: Decider, thresholds: tuple | None) -> Counter:
    counts: Counter = Counter()
    for r in results:
        got = decider.commands(r, thresholds)
        kind = outcome(r["expected"], got)
        counts["n"] += 1
        counts[kind] += 1
        extra = [c for c in got if c not in r["expected"]]
        counts["moves"] += any(c.split()[0] in MOVES or c == "takeoff" for c in extra)
        counts["emergency"] += "emergency" in extra
        counts["commands"] += len(extra)
        if r["expected"]:
            counts["commands_n"] += 1
            counts["commands_right"] += kind == "right"
    return counts


GRID = [(c, r, f, fr) for c, r, f, fr in itertools.product((0.5, 0.6, 0.7, 0.8, 0.9), (0.7, 0.85, 0.95),
                                                           (-30.0, -26.0, -22.0, -19.0, -16.0, -13.0),
                                                           (-26.0, -22.0, -19.0, -16.0, -13.0))
        if r >= c and fr >= f]


def objective(counts: Counter) -> float:
    """Right files, with a file that gave a command that was not said costing 20 right ones."""
    return counts["right"] - 20 * counts["wrong"]


def choose(results: list[dict], decider: Decider) -> tuple:
    return max(GRID, key=lambda t: objective(tally(results, decider, t)))


def report(results: list[dict], engine: str = "pocketsphinx") -> str:
    from voice_data import NOISES

    decider = Decider(engine)
    lines = []
    groups = list(dict.fromkeys(r["group"] for r in results if r["set"] != "real"))
    conditions = ["quiet", *NOISES]

    def cell(rs: list[dict], thresholds: tuple | None) -> str:
        if not rs:
            return "-"
        c = tally(rs, decider, thresholds)
        return f"{c['right']}/{c['n']} W{c['wrong']}"

    lines.append("commands (right/n, W = files with a command that was not said), shipped thresholds")
    lines.append(f"{'group':16}" + "".join(f"{c:>12}" for c in conditions) + f"{'all noise':>12}{'oog':>10}")
    for group in [*groups, "held out"]:
        rows = [r for r in results if r["set"] != "real"
                and (r["group"] == group or (group == "held out" and r["group"] not in TUNING_GROUPS))]
        cells = [cell([r for r in rows if r["condition"] == c and r["set"] == "clean"], None) for c in conditions]
        noisy = cell([r for r in rows if r["condition"] != "quiet" and r["set"] == "clean"], None)
        oog = cell([r for r in rows if r["set"] == "oog"], None)
        lines.append(f"{group:16}" + "".join(f"{c:>12}" for c in cells) + f"{noisy:>12}{oog:>10}")
    real = [r for r in results if r["set"] == "real"]
    for group in dict.fromkeys(r["group"] for r in real):
        c = tally([r for r in real if r["group"] == group], decider, None)
        lines.append(f"{group}: {c['n']} utterances, {c['commands']} commands in {c['wrong']} of them "
                     f"({c['moves']} with a move or takeoff, {c['emergency']} emergency)")
        counts = Counter(h["command"] for r in real if r["group"] == group for h in r["heard"] if h["command"])
        if counts:
            lines.append(f"   commands: {dict(counts)}")
    # Leave one voice group out: thresholds chosen on the others, scored on it.
    lines.append("leave one voice group out (thresholds chosen on the other groups; quiet + noise; right/n W):")
    commands = [r for r in results if r["set"] in ("clean", "oog")]
    for group in groups:
        train = [r for r in commands if r["group"] != group]
        test = [r for r in commands if r["group"] == group]
        t = choose(train, decider)
        c = tally(test, decider, t)
        lines.append(f"  {group:16} thresholds {t}: {c['commands_right']}/{c['commands_n']} right, {c['wrong']} wrong")
    wrong = [(r["group"], r["voice"], r["condition"], r["text"], decider.commands(r, None)) for r in results
             if r["set"] != "real" and outcome(r["expected"], decider.commands(r, None)) == "wrong"]
    for w in wrong:
        lines.append(f"  wrong: {w}")
    return "\n".join(lines)


if __name__ == "__main__":  # a decoding worker: jobs file, engine
    listing = Path(sys.argv[1])
    done = decode(json.loads(listing.read_text(encoding="utf-8")), sys.argv[2])
    listing.with_suffix(".out").write_text(json.dumps(done), encoding="utf-8")
