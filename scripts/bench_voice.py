#!/usr/bin/env python3
"""Voice benchmark: per engine, model load time, accuracy on every test set, real-time factor, latency from the end
of speech to the emitted command when streaming at real-time pace, and peak RSS. Each engine runs in its own process
(so peak RSS is its own); the table is printed side by side at the end.

    nice python scripts/bench_voice.py                 # pocketsphinx (English) and vosk (Korean)
    nice python scripts/bench_voice.py --quick         # skip the real-time latency runs
    EDGEPILOT_VOSK_MODEL=... python scripts/bench_voice.py --runs vosk:en   # with an English Vosk model
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "tests" / "data" / "voice"
SETS = {"en": ("clean", "noisy", "ood", "long"), "ko": ("ko",)}


def speech_end(samples: np.ndarray, rate: int, start_s: float, end_s: float) -> float:
    """The true end of speech inside [start, end]: the last 10 ms frame within 30 dB of the loudest."""
    piece = samples[int(start_s * rate):int(end_s * rate)].astype(np.float64)
    frames = piece[: len(piece) // 160 * 160].reshape(-1, 160)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    loud = np.nonzero(rms > rms.max() * 10 ** (-30 / 20))[0]
    return start_s + (loud[-1] + 1) * 0.01


def read_samples(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"), w.getframerate()


def run_engine(engine: str, lang: str, quick: bool) -> dict:
    from voice.audio import WavSource
    from voice.engines import make_recogniser
    from voice.listener import Transcriber
    from voice.vocabulary import Vocabulary

    manifest = json.loads((DATA / "manifest.json").read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    recogniser = make_recogniser(engine, Vocabulary.load(lang))
    report: dict = {"engine": engine, "lang": lang, "load_s": time.perf_counter() - t0, "sets": {}}
    cpu0, audio_s = time.process_time(), 0.0
    for kind in SETS[lang]:
        right = wrong = dropped = 0
        for item in (m for m in manifest if m["set"] == kind and m.get("rate", 16000) == 16000):
            source = WavSource(DATA / item["file"])
            audio_s += source.duration_s
            got = [h.command.text for h in Transcriber(recogniser).run(source.chunks()) if h.command]
            if got == item["expected"]:
                right += 1
            elif any(c not in item["expected"] for c in got):
                wrong += 1
            else:
                dropped += 1
        report["sets"][kind] = {"n": right + wrong + dropped, "right": right, "wrong": wrong, "dropped": dropped}
    report["rtf"] = (time.process_time() - cpu0) / audio_s
    if not quick:
        report["latency_ms"] = realtime_latencies(recogniser, manifest, lang)
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


def realtime_latencies(recogniser, manifest: list[dict], lang: str) -> list[float]:
    """Stream files at real-time pace; for every emitted command, wall time from the true end of its speech."""
    from voice.audio import WavSource
    from voice.listener import Transcriber

    items = [m for m in manifest if m["set"] == ("long" if lang == "en" else "ko") and m.get("rate", 16000) == 16000]
    latencies = []
    for item in items:
        samples, rate = read_samples(DATA / item["file"])
        segments = item.get("segments") or [[0.0, len(samples) / rate]]
        ends = [speech_end(samples, rate, start, end) for start, end in segments]
        source = WavSource(DATA / item["file"], realtime=True)
        started: list[float] = []

        def chunks(source=source, started=started):
            for chunk in source.chunks():
                if not started:
                    started.append(time.monotonic() - len(chunk) / 16000)  # the first chunk's audio began then
                yield chunk

        for heard in Transcriber(recogniser).run(chunks()):
            if heard.command is None:
                continue
            nearest = min(ends, key=lambda end, h=heard: abs(end - h.t_speech_end))
            latencies.append((heard.wall_emit - started[0] - nearest) * 1000)
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=["pocketsphinx:en", "vosk:ko"], help="engine:lang to run")
    parser.add_argument("--quick", action="store_true", help="no real-time latency runs")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, lang = args.child.split(":")
        print(json.dumps(run_engine(engine, lang, args.quick)))
        return 0
    reports = []
    for run in args.runs:
        command = [sys.executable, __file__, "--child", run] + (["--quick"] if args.quick else [])
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{run}: failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            continue
        reports.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"{'':28}" + "".join(f"{r['engine'] + ':' + r['lang']:>18}" for r in reports))
    rows: list[tuple[str, list[str]]] = [
        ("model load (s)", [f"{r['load_s']:.2f}" for r in reports]),
        ("real-time factor (CPU)", [f"{r['rtf']:.3f}" for r in reports]),
        ("peak RSS (MB)", [f"{r['peak_rss_mb']:.0f}" for r in reports]),
    ]
    if not args.quick:
        for label, q in (("latency p50 (ms)", 50), ("latency p95 (ms)", 95)):
            rows.append((label, [f"{np.percentile(r['latency_ms'], q):.0f}" if r["latency_ms"] else "-"
                                 for r in reports]))
        rows.append(("latency samples", [str(len(r["latency_ms"])) for r in reports]))
    kinds = sorted({k for r in reports for k in r["sets"]}, key=["clean", "noisy", "ood", "long", "ko"].index)
    for kind in kinds:
        cells = []
        for r in reports:
            s = r["sets"].get(kind)
            cells.append(f"{s['right']}/{s['n']} W{s['wrong']} D{s['dropped']}" if s else "-")
        rows.append((f"{kind}: right/n W(rong) D(ropped)", cells))
    for label, cells in rows:
        print(f"{label:28}" + "".join(f"{c:>18}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
