#!/usr/bin/env python3
"""Benchmark the control loop in real time: a 30 Hz loop driving the simulated drone with its camera rendered every
tick, for --seconds; with --full also the whole product loop: face + person detection, tracking and the follow
behaviour on every frame, without speech and with speech recognition streaming the demo's spoken commands at
real-time pace (PocketSphinx, Vosk with the Korean model from PyPI, and Whisper), its recogniser on a thread of this
process or in a process of its own (what ``fly --voice`` does).

Each configuration runs in its own process so its peak RSS is its own. Prints achieved rate, overruns, period jitter
(median / p99 of |period - 1/hz|), per-tick work time, peak RSS, and the renderer's own fps for both vehicles at
640x480, all measured in this one run.

    python scripts/bench_loop.py                 # 60 s render-only loop + renderer fps
    python scripts/bench_loop.py --full          # + the full loop with each speech engine
    python scripts/bench_loop.py --tello         # a follow flight over the Tello protocol (the emulator on loopback)

``--tello`` flies ``edgepilot fly --vehicle tello`` against ``edgepilot emulate-tello --bind 127.0.0.1`` (real UDP,
the emulator's rendered video with a person in it), each configuration twice, interleaved: no speech (a script takes
off and follows), and the demo's spoken "take off", "follow me", "land" from a WAV file with PocketSphinx and with
Whisper (the recogniser in its own process, as ``fly --voice`` runs it). Prints the run's own loop statistics.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from edgepilot.pilot.core.grammar import parse_script
from edgepilot.pilot.core.perception import PerceptionWorker
from edgepilot.pilot.core.runner import Pilot
from edgepilot.sim.render import SimCamera, benchmark
from edgepilot.sim.vehicles import SimDrone
from edgepilot.sim.world import Person, World


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def demo_speech_file() -> Path:
    """The demo's spoken commands as a WAV file: "take off", 4 s, "follow me", 20 s of following, "land"."""
    from edgepilot.pilot.app.demo import demo_speech

    audio, rate = demo_speech()
    path = Path(tempfile.mkdtemp()) / "speech.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(audio.tobytes())
    return path


def _voice(engine: str, process: bool) -> object:
    """A listener streaming the demo's speech at real-time pace (Vosk gets the Korean model: the only one here)."""
    from edgepilot.voice.listener import VoiceListener

    lang = "ko" if engine == "vosk" else "en"
    return VoiceListener(str(demo_speech_file()), engine=engine, lang=lang, realtime=True, process=process)


def loop_run(seconds: float, hz: float, full: bool, engine: str | None = None, process: bool = False) -> dict:
    world = World.build(0, "drone", people=0).with_people(
        Person.create("alice", [(200, 0), (200, 200), (500, 200), (500, -200), (200, -200)], speed_cm_s=40.0,
                      start_s=3.0, mode="loop", seed=1))
    drone = SimDrone()
    camera = SimCamera(world, drone)
    perception = None
    listener = _voice(engine, process) if engine else None
    if full:
        from edgepilot.vision.pipeline import Perception

        perception = Perception(detect=("face", "person"), person_every=2)
    work_ms: list[float] = []
    perceived: list[float] = []

    def detect(frame):
        t0 = time.perf_counter()
        found = perception.process(frame) if perception else []
        work_ms.append((time.perf_counter() - t0) * 1e3)
        perceived.append(time.monotonic())
        return found

    # Both run until --seconds ends: turning keeps the rendered view changing.
    script = "takeoff; up 80; follow me" if full else "takeoff; up 80; " + "; ".join(["cw 90", "ccw 90"] * 40)
    # As in `edgepilot fly`: perception (render + detect) on its own thread, the loop reads the latest result.
    pilot = Pilot(drone, hz=hz, max_duration_s=seconds, can_see=True)
    worker = PerceptionWorker(camera, detect, pilot.seen.set).start()
    heard: list[str] = []
    if listener is not None:
        listener.start(lambda command, info: heard.append(command.text))
    result = pilot.run(parse_script(script))
    worker.stop()
    if listener is not None:
        listener.stop()
    stats = result.loop
    mode = "render only"
    if full:
        mode = f"full: render + face/person detect + track + follow + {engine or 'no'} speech" + (
            " (recogniser in its own process)" if process else " (recogniser on a thread)" if engine else "")
    return {
        "mode": mode,
        "heard": heard,
        "ticks": stats.ticks,
        "achieved_hz": round(stats.achieved_hz, 3),
        "overruns": stats.overruns,
        "jitter_p50_ms": round(stats.jitter_ms(50), 3),
        "jitter_p99_ms": round(stats.jitter_ms(99), 3),
        "p99_period_ms": round(stats.period_ms(99), 3),
        "perception_fps": round((len(perceived) - 1) / (perceived[-1] - perceived[0]), 1) if len(perceived) > 1 else 0,
        "work_p50_ms": round(float(np.median(work_ms)), 2) if work_ms else 0.0,
        "work_p99_ms": round(float(np.percentile(work_ms, 99)), 2) if work_ms else 0.0,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def tello_flight(voice: str | None, engine: str | None, seconds: float) -> dict:
    """One follow flight against a fresh emulator on loopback; the loop statistics of ``fly --json``."""
    edgepilot = str(Path(sys.executable).parent / "edgepilot")
    emulator = subprocess.Popen([edgepilot, "emulate-tello", "--bind", "127.0.0.1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2.0)
        command = [edgepilot, "fly", "--vehicle", "tello", "--host", "127.0.0.1", "--port",
                   "9889", "--json", "--max-duration", str(seconds)]
        command += ["--voice", voice, "--engine", str(engine)] if voice else ["--script", "takeoff", "--follow", "me"]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 90)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
    return {**result["loop"], "commands": [c["command"] for c in result["commands"]]}


def tello_runs(seconds: float, rounds: int = 2, engines: list[str] | None = None) -> None:
    path = demo_speech_file()
    configs = [("no speech", None, "none"), ("PocketSphinx", str(path), "pocketsphinx"), ("Whisper", str(path), "whisper")]
    configs = [c for c in configs if c[2] in engines] if engines else configs
    print(f"follow flights over the Tello protocol (emulator on loopback), {seconds:g} s each, {rounds} rounds:")
    for round_ in range(rounds):
        for label, voice, engine in configs:
            r = tello_flight(voice, engine, seconds)
            print(f"  {label:13} round {round_ + 1}: p99 jitter {r['p99_jitter_ms']:6.2f} ms, {r['overruns']} overruns, "
                  f"p99 period {r['p99_period_ms']} ms, {r['achieved_hz']} Hz; commands {r['commands']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--hz", type=float, default=30.0)
    parser.add_argument("--full", action="store_true", help="also run the full loop with each speech engine")
    parser.add_argument("--tello", action="store_true", help="follow flights against the Tello emulator instead")
    parser.add_argument("--engines", nargs="+", help="--tello: only these (none, pocketsphinx, whisper)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one configuration, JSON on stdout
    args = parser.parse_args()
    if args.tello:
        tello_runs(args.seconds, engines=args.engines)
        return 0
    if args.child:
        name, _, where = args.child.partition("-")
        full, engine = args.child != "render", (name if name in ("vosk", "pocketsphinx", "whisper") else None)
        print(json.dumps(loop_run(args.seconds, args.hz, full, engine, process=where == "process")))
        return 0

    print("renderer, one OpenCV thread, 640x480, 300 frames:")
    for kind in ("drone", "car"):
        r = benchmark(kind, 640, 480, frames=300)
        print(f"  {kind:5}: median {r['median_ms']:.2f} ms  p95 {r['p95_ms']:.2f} ms  -> {r['fps']:.0f} fps "
              f"({r['fps'] / args.hz:.1f}x the {args.hz:g} Hz loop)")
    runs = []
    full = ["full", "pocketsphinx", "pocketsphinx-process", "vosk", "vosk-process", "whisper-process"]
    for child in ["render"] + (full if args.full else []):
        proc = subprocess.run([sys.executable, __file__, "--child", child, "--seconds", str(args.seconds),
                               "--hz", str(args.hz)], capture_output=True, text=True, check=True)
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    for r in runs:
        print(f"loop {args.hz:g} Hz for {args.seconds:g} s, {r['mode']}:")
        print(f"  achieved {r['achieved_hz']} Hz over {r['ticks']} ticks, {r['overruns']} overruns")
        print(f"  jitter |period - {1000 / args.hz:.2f} ms|: median {r['jitter_p50_ms']} ms, p99 {r['jitter_p99_ms']} ms"
              f" (target < 5 ms); p99 period {r['p99_period_ms']} ms")
        print(f"  perception thread: {r['perception_fps']} fps, detect median {r['work_p50_ms']} ms, "
              f"p99 {r['work_p99_ms']} ms; "
              f"peak RSS {r['peak_rss_mb']} MB" + (f"; heard {r['heard']}" if r["heard"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
