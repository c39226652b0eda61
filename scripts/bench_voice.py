#!/usr/bin/env python3
"""Voice benchmark.

Default: the speech team's table (scripts/voice_eval.py): every voice group (flite, espeak-ng accents and variants,
perturbed flite voices; only flite's slt/kal16 were ever used for tuning) in quiet at three speaking levels and in
rotor, wind, babble and fan noise 13 dB below the speech, phrases that are no valid command ("go forward ten
meters"), real people's speech that holds no command (../shared/data/real-speech, if present), and thresholds chosen
leaving one voice group out.

    nice python scripts/bench_voice.py [--workers 2] [--save r.json | --load r.json]

``--engines``: the engine comparison: per engine, model load time, accuracy on every test set, real-time factor, latency from the end
of speech to the emitted command when streaming at real-time pace, and peak RSS. Each engine runs in its own process
(so peak RSS is its own); the table is printed side by side at the end.

    nice python scripts/bench_voice.py                 # pocketsphinx (English) and vosk (Korean)
    nice python scripts/bench_voice.py --quick         # skip the real-time latency runs
    nice python scripts/bench_voice.py --engines --runs whisper:en pocketsphinx:en --latency-only
    EDGEPILOT_VOSK_MODEL=... python scripts/bench_voice.py --runs vosk:en   # with an English Vosk model

Sets (tests/voice_data.py): clean (one command per file), noisy (the same with pink noise 15 dB below the speech),
ood (speech that is no command: must give nothing), long (sessions of several commands: all, in order), and the
_noisy forms of ood and long (pink noise all through, as from a flying drone). The
thresholds were tuned on the voices slt and kal16 ("tuned"); flite's awb and rms voices ("held out") and a second set
of sentences that are no command ("ood-new") were not looked at while tuning. They are made with flite into
scripts/cache/voice-heldout the first time (skipped if flite is missing). "best" counts files whose best hypothesis
was the right command before the confidence check.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))
HELDOUT = ROOT / "scripts" / "cache" / "voice-heldout"
SETS = ROOT / "scripts" / "cache" / "voice-sets"
TUNED, HELD_OUT = ("slt", "kal16"), ("awb", "rms")


def speech_end(samples: np.ndarray, start_s: float, end_s: float) -> float:
    """The true end of speech inside [start, end]: the last 10 ms frame within 30 dB of the loudest."""
    piece = samples[int(start_s * 16000):int(end_s * 16000)].astype(np.float64)
    frames = piece[: len(piece) // 160 * 160].reshape(-1, 160)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    loud = np.nonzero(rms > rms.max() * 10 ** (-30 / 20))[0]
    return start_s + (loud[-1] + 1) * 0.01


def heldout_root() -> Path | None:
    if not (HELDOUT / "manifest.json").is_file():
        if not shutil.which("flite"):
            return None
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_test_audio.py"), "--heldout", str(HELDOUT)],
                       check=True, capture_output=True)
    return HELDOUT


def write_sets(lang: str, noise_seeds: int = 1) -> Path:
    """Write every set's audio (the made ones too) as WAVs with a list, so the engine's process only reads small
    files: making a noisy 20 s session takes more memory than the recogniser, and would show in its peak RSS."""
    from voice_data import items, write_wav

    if lang == "en":
        sets = [(f"{kind} tuned", items(kind, voices=TUNED, noise_seeds=noise_seeds))
                for kind in ("clean", "noisy", "ood", "ood_noisy", "long", "long_noisy")]
        root = heldout_root()
        if root is not None:
            sets += [(f"{kind} held out", items(kind, root, voices=HELD_OUT, noise_seeds=noise_seeds))
                     for kind in ("clean", "noisy", "ood", "ood_noisy")]
            sets += [(f"ood-new{noise} all voices", items(f"ood_heldout{noise}", root, noise_seeds=noise_seeds))
                     for noise in ("", "_noisy")]
    else:
        sets = [("ko", items("ko"))]
    out = SETS / lang
    listing = []
    for label, entries in sets:
        for number, item in enumerate(entries):
            path = out / f"{label.replace(' ', '_')}_{number:03d}.wav"
            write_wav(path, item.samples)
            listing.append({"set": label, "name": item.name, "path": str(path), "expected": item.expected,
                            "segments": item.segments})
    (out / "sets.json").write_text(json.dumps(listing), encoding="utf-8")
    return out / "sets.json"


def read_sets(listing: Path) -> dict[str, list[dict]]:
    sets: dict[str, list[dict]] = {}
    for entry in json.loads(listing.read_text(encoding="utf-8")):
        sets.setdefault(entry["set"], []).append(entry)
    return sets


def run_engine(engine: str, lang: str, quick: bool, listing: Path, latency_only: bool = False) -> dict:
    from voice_data import chunks, read_wav

    from edgepilot.pilot.core.errors import CommandRejected
    from edgepilot.pilot.core.grammar import parse_command
    from edgepilot.voice.engines import make_recogniser
    from edgepilot.voice.listener import Transcriber
    from edgepilot.voice.vocabulary import Vocabulary

    t0 = time.perf_counter()
    recogniser = make_recogniser(engine, Vocabulary.load(lang))
    report: dict = {"engine": engine, "lang": lang, "load_s": time.perf_counter() - t0, "sets": {},
                    "loaded_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    cpu0, audio_s = time.process_time(), 0.0
    sets = read_sets(listing)

    def best(heard) -> str | None:
        text = recogniser.vocab.command_text(heard.words)
        try:
            return parse_command(text, source="voice").text if text else None
        except CommandRejected:
            return None

    for label, entries in ({} if latency_only else sets).items():
        counts = {"n": 0, "right": 0, "wrong": 0, "moving": 0, "dropped": 0, "best": 0, "wrong_files": []}
        for entry in entries:
            samples = read_wav(Path(entry["path"]))
            audio_s += len(samples) / 16000
            heard = list(Transcriber(recogniser).run(chunks(samples)))
            got = [h.command.text for h in heard if h.command]
            counts["n"] += 1
            counts["best"] += [best(h) for h in heard if best(h)] == entry["expected"]
            if got == entry["expected"]:
                counts["right"] += 1
            elif any(c not in entry["expected"] for c in got):
                counts["wrong"] += 1
                counts["moving"] += any(c not in entry["expected"] and c not in ("stop", "land") for c in got)
                counts["wrong_files"].append(f"{entry['name']}: {got}")
            else:
                counts["dropped"] += 1
        report["sets"][label] = counts
    report["rtf"] = (time.process_time() - cpu0) / audio_s if audio_s else float("nan")
    if not quick:
        paced = sets["long tuned"] if lang == "en" else sets["ko"]
        report["latency_ms"] = realtime_latencies(recogniser, paced, tail_s=0.0 if lang == "en" else 1.0)
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


def realtime_latencies(recogniser, entries: list[dict], tail_s: float) -> list[float]:
    """Stream audio at real-time pace; for every emitted command, wall time from the true end of its speech.
    ``tail_s`` of quiet is added after each file (the Korean files are single commands that end with the speech)."""
    from voice_data import chunks, read_wav

    from edgepilot.voice.listener import Transcriber

    sources = []
    for entry in entries:
        samples = read_wav(Path(entry["path"]))
        segments = entry["segments"] or [(0.0, len(samples) / 16000)]
        sources.append((np.concatenate([samples, np.zeros(int(tail_s * 16000), dtype=np.int16)]), segments))
    latencies = []
    for samples, segments in sources:
        ends = [speech_end(samples, start, end) for start, end in segments]
        started: list[float] = []

        def paced(samples=samples, started=started):
            for index, chunk in enumerate(chunks(samples)):
                if not started:
                    started.append(time.monotonic())
                due = started[0] + (index + 1) * len(chunk) / 16000  # a microphone delivers a chunk when it is full
                time.sleep(max(0.0, due - time.monotonic()))
                yield chunk

        for heard in Transcriber(recogniser).run(paced()):
            if heard.command is None:
                continue
            nearest = min(ends, key=lambda end, h=heard: abs(end - h.t_speech_end))
            latencies.append((heard.wall_emit - started[0] - nearest) * 1000)
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", action="store_true", help="the engine comparison (load, RTF, latency, RSS)")
    parser.add_argument("--workers", type=int, default=2, help="decoding processes for the voice-group table")
    parser.add_argument("--save", type=Path, help="keep what was heard in this JSON file")
    parser.add_argument("--load", type=Path, help="report on a file --save wrote, or on a --workdir (so far)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "scripts" / "cache" / "voice-eval-run",
                        help="where the decoding workers write what they heard, file by file")
    parser.add_argument("--no-real", action="store_true", help="leave out the real-speech clips")
    parser.add_argument("--every", type=int, default=1, help="every n-th phrase of each voice (a quicker table)")
    parser.add_argument("--real-every", type=int, default=1, help="every n-th real clip")
    parser.add_argument("--safety", action="store_true",
                        help="every voice's stop/hover/halt/land/land-now in quiet and each noise (stop/land recall)")
    parser.add_argument("--false-triggers", type=float, metavar="MIN",
                        help="commands --engine hears in each noise alone, MIN minutes each")
    parser.add_argument("--kws", action="store_true", help="measure PocketSphinx's keyphrase search for stop/land")
    parser.add_argument("--thresholds", type=float, nargs="+", metavar="T",
                        help="decide under these thresholds instead of those the run shipped with: CONF CONF_RISKY "
                             "[FIT FIT_RISKY] (no fit for whisper)")
    parser.add_argument("--plain", action="store_true",
                        help="PocketSphinx without the out-of-grammar paths (the decoder before issue 14)")
    parser.add_argument("--engine", default="pocketsphinx", help="the engine of the voice-group table")
    parser.add_argument("--runs", nargs="+", default=["pocketsphinx:en", "vosk:ko"], help="engine:lang to run")
    parser.add_argument("--quick", action="store_true", help="no real-time latency runs")
    parser.add_argument("--latency-only", action="store_true", help="only the real-time latency runs")
    parser.add_argument("--noise-seeds", type=int, default=1,
                        help="each file of the noisy sets in this many noises (3: 300 noisy commands per set)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--write-sets", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_sets:
        lang, _, seeds = args.write_sets.partition(":")
        print(write_sets(lang, int(seeds or 1)))
        return 0
    if args.child:
        engine, lang, listing = args.child.split(":", 2)
        print(json.dumps(run_engine(engine, lang, args.quick, Path(listing), args.latency_only)))
        return 0
    if args.false_triggers:
        import voice_eval

        print(voice_eval.false_triggers(args.engine, args.false_triggers))
        return 0
    if args.kws:
        import voice_eval

        print(voice_eval.keyword_spotting(every=args.real_every))
        return 0
    if not args.engines:
        import voice_eval

        if args.load:
            results = (voice_eval.read_partial(args.load) if args.load.is_dir()
                       else json.loads(args.load.read_text(encoding="utf-8")))
            # The files --every / --real-every choose, so that runs of different sizes compare on the same files.
            spoken = voice_eval.safety_jobs() if args.safety else voice_eval.voice_jobs(args.every)
            wanted = {(j["path"], j["condition"]) for j in spoken + voice_eval.real_speech_jobs(args.real_every)}
            results = [r for r in results if (r["path"], r["condition"]) in wanted]
        else:
            jobs = voice_eval.safety_jobs() if args.safety else voice_eval.voice_jobs(args.every)
            jobs += [] if args.no_real else voice_eval.real_speech_jobs(args.real_every)
            t0 = time.perf_counter()
            engine = "pocketsphinx-plain" if args.plain else args.engine
            results = voice_eval.decode_parallel(jobs, args.workers, engine, args.workdir)
            print(f"decoded {len(jobs)} files in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            if args.save:
                args.save.write_text(json.dumps(results), encoding="utf-8")
        thresholds = (*args.thresholds, None, None)[:4] if args.thresholds else None
        print(voice_eval.report(results, engine=args.engine, thresholds=thresholds))
        return 0
    reports = []
    for run in args.runs:
        # In a process of its own: Linux keeps a process's peak RSS across fork and exec, so the engine's process
        # would inherit the memory it took to make the audio.
        made = subprocess.run([sys.executable, __file__, "--write-sets", f"{run.split(':')[1]}:{args.noise_seeds}"],
                              capture_output=True, text=True, check=True)
        listing = made.stdout.strip().splitlines()[-1]
        command = [sys.executable, __file__, "--child", f"{run}:{listing}"] + (["--quick"] if args.quick else []) + (
            ["--latency-only"] if args.latency_only else [])
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{run}: failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            continue
        reports.append(json.loads(done.stdout.strip().splitlines()[-1]))
    width = 26
    print(f"{'':30}" + "".join(f"{r['engine'] + ':' + r['lang']:>{width}}" for r in reports))
    rows: list[tuple[str, list[str]]] = [
        ("model load (s)", [f"{r['load_s']:.2f}" for r in reports]),
        ("real-time factor (CPU)", [f"{r['rtf']:.3f}" for r in reports]),
        ("RSS after model load (MB)", [f"{r['loaded_rss_mb']:.0f}" for r in reports]),
        ("peak RSS (MB)", [f"{r['peak_rss_mb']:.0f}" for r in reports]),
    ]
    if not args.quick:
        for label, q in (("latency p50 (ms)", 50), ("latency p95 (ms)", 95)):
            rows.append((label, [f"{np.percentile(r['latency_ms'], q):.0f}" if r["latency_ms"] else "-"
                                 for r in reports]))
        rows.append(("latency samples", [str(len(r["latency_ms"])) for r in reports]))
    labels = list(dict.fromkeys(label for r in reports for label in r["sets"]))
    for label in labels:
        cells = []
        for r in reports:
            s = r["sets"].get(label)
            cells.append(f"{s['right']}/{s['n']} W{s['wrong']}/{s['moving']} D{s['dropped']} best{s['best']}" if s
                         else "-")
        rows.append((label, cells))
    for label, cells in rows:
        print(f"{label:30}" + "".join(f"{c:>{width}}" for c in cells))
    print("sets: right/n, W = files with a wrong command / of them, a command other than stop or land, D = files with a "
          "command dropped, best = best hypothesis right")
    for r in reports:
        for label, s in r["sets"].items():
            for note in s["wrong_files"]:
                print(f"  wrong ({r['engine']}, {label}): {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
