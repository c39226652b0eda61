#!/usr/bin/env python3
"""Human in the loop, measured: how soon the pilot says "say again", and how often the demo needs a person.

    python scripts/bench_talk.py [--sentences 12] [--demo-seeds 3] [--json]

1. "say again" latency: sentences that are no command (tests/data/voice/ood, both voices), played in real time into
   the real listener (PocketSphinx) of a simulated flight with spoken feedback. For each utterance the recogniser
   drops: the time from the drop decision to the pilot asking for the phrase (its command queue and a 30 Hz tick),
   and from there to the audio being ready (synthesis), for espeak-ng and flite. Medians and p90.
2. Hand-overs in the drone demo (``edgepilot demo``: spoken take off, follow a walking person, land) for several
   world seeds: how many times autonomy was lost and a person had to take over. (The car demo has no hand-over
   trigger: the lane behaviour does not report a lost lane.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VOICE = ROOT / "tests" / "data" / "voice"
RATE = 16000


def _session(files: list[Path], path: Path, gap_s: float = 1.2) -> None:
    pieces = [np.zeros(RATE // 2, np.int16)]
    for f in files:
        with wave.open(str(f), "rb") as w:
            pieces += [np.frombuffer(w.readframes(w.getnframes()), "<i2"), np.zeros(round(gap_s * RATE), np.int16)]
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(np.concatenate(pieces).tobytes())


def say_again_latency(tts_name: str, sentences: int) -> dict:
    from edgepilot.pilot.app import talk
    from edgepilot.pilot.core.runner import Pilot
    from edgepilot.sim.vehicles import make_sim_drone
    from edgepilot.voice.listener import VoiceListener
    from edgepilot.voice.tts import Speaker, make_tts

    files = sorted((VOICE / "ood").glob("*.wav"))[:sentences]
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "session.wav"
        _session(files, wav)
        listener = VoiceListener(str(wav), engine="pocketsphinx")
        speaker = Speaker(make_tts(tts_name))
        pilot = Pilot(make_sim_drone(), max_duration_s=120)
        on_unsure = talk.attach(pilot, speaker, listener)
        dropped: list[float] = []
        asked: list[float] = []
        lock = threading.Lock()
        say = speaker.say

        def timed_say(text: str, t_s: float) -> None:
            if text == "say again":
                with lock:
                    asked.append(time.monotonic())
            say(text, t_s)

        pilot.tap.say = timed_say  # the Talk tap holds the speaker's bound method

        def on_drop(info: dict) -> None:
            decided = time.monotonic()
            command = on_unsure(info)
            if command is not None and command.verb == "pardon":
                with lock:
                    dropped.append(decided)

        listener.start(lambda command, info: None, on_drop=on_drop)  # commands are not flown: only the drops count
        pilot.run(stay_alive=lambda: listener.running)
        listener.stop()
        speaker.close()
    ready = [latency for text, _, latency in speaker.said if text == "say again"]
    queue_ms = [1e3 * (a - d) for d, a in zip(dropped, asked, strict=False)]
    synth_ms = [1e3 * r for r in ready]
    total = [q + s for q, s in zip(queue_ms, synth_ms, strict=False)]
    return {"tts": tts_name, "utterances": len(files), "say_again": len(ready),
            "queue_ms_median": round(statistics.median(queue_ms), 1) if queue_ms else None,
            "synth_ms_median": round(statistics.median(synth_ms), 1) if synth_ms else None,
            "total_ms_median": round(statistics.median(total), 1) if total else None,
            "total_ms_p90": round(float(np.percentile(total, 90)), 1) if total else None}


def demo_handovers(seeds: int) -> list[dict]:
    from edgepilot.pilot.app.demo import drone_demo

    rows = []
    for seed in range(seeds):
        summary = drone_demo(seed, None)
        rows.append({"seed": seed, "handovers": len(summary["handovers"]),
                     "why": [h["why"] for h in summary["handovers"]],
                     "landed": not summary["final"]["flying"]})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=12)
    parser.add_argument("--demo-seeds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    latency = [say_again_latency(name, args.sentences) for name in ("espeak-ng", "flite")]
    demos = demo_handovers(args.demo_seeds)
    if args.json:
        print(json.dumps({"say_again": latency, "demo": demos}))
        return 0
    print(f"{'tts':<10}{'utterances':>11}{'say again':>10}{'queue ms':>10}{'synth ms':>10}{'total ms':>10}{'p90':>8}")
    for r in latency:
        print(f"{r['tts']:<10}{r['utterances']:>11}{r['say_again']:>10}{r['queue_ms_median']!s:>10}"
              f"{r['synth_ms_median']!s:>10}{r['total_ms_median']!s:>10}{r['total_ms_p90']!s:>8}")
    print("drone demo hand-overs by seed: " + ", ".join(f"{d['seed']}: {d['handovers']} {d['why']}" for d in demos))
    return 0


if __name__ == "__main__":
    sys.exit(main())
