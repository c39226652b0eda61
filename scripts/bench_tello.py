"""Benchmark the Tello link against the emulator: command round trip, state rate, video frame age, sustained rc rate.

    sudo python scripts/bench_tello.py [--seconds 5]

The emulator runs as its own process (``edgepilot emulate-tello``, in the 192.168.10.1 network namespace, so it
needs root), the client is edgepilot's Tello backend. Round trips are shown side by side with unmodified
djitellopy's own blocking ``send_command_with_return`` (which polls every 0.1 s), run in a child process first
(a djitellopy client keeps UDP 8889/8890 until its process exits). Frame age is glass-to-decode: the
emulator stamps each frame with CLOCK_MONOTONIC before encoding, the client reads the stamp after decoding.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time

import numpy as np

from edgepilot.drone.tello import TelloConfig, TelloVehicle
from edgepilot.pilot.core.messages import Command, Velocity
from edgepilot.sim.tello_video import read_stamp, stamp_age_ms


def stats(values_ms: list[float]) -> str:
    if not values_ms:
        return "no samples"
    array = np.asarray(values_ms)
    return f"median {np.median(array):7.1f} ms  p95 {np.percentile(array, 95):7.1f} ms  (n={len(array)})"


_DJITELLOPY_PROBE = """
import json, logging, sys, time
from djitellopy import Tello
Tello.LOGGER.setLevel(logging.WARNING)
tello = Tello()
tello.connect()
times = []
for _ in range(int(sys.argv[1])):
    started = time.perf_counter()
    tello.send_command_with_return("battery?")
    times.append((time.perf_counter() - started) * 1000)
print(json.dumps(times))
"""


def djitellopy_round_trips(count: int) -> list[float]:
    """djitellopy's own blocking path, in a child process (it frees the ports only when its process ends)."""
    done = subprocess.run([sys.executable, "-c", _DJITELLOPY_PROBE, str(count)], capture_output=True, text=True,
                          timeout=120)
    if done.returncode != 0:
        print(f"djitellopy comparison failed: {done.stderr.strip()[-300:]}")
        return []
    return json.loads(done.stdout.strip().splitlines()[-1])


def round_trips(vehicle: TelloVehicle, count: int) -> list[float]:
    ours = []
    for i in range(count):
        started = time.perf_counter()
        vehicle.execute(Command("speed", 50 + i % 2))
        while vehicle.busy():
            time.sleep(0.0005)
        ours.append((time.perf_counter() - started) * 1000)
    return ours


def state_rate(vehicle: TelloVehicle, seconds: float) -> tuple[float, list[float]]:
    arrivals: list[float] = []
    last = vehicle.telemetry().last_state_s
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        now_state = vehicle.telemetry().last_state_s
        if now_state != last:
            arrivals.append(now_state)
            last = now_state
        time.sleep(0.002)
    gaps = list(np.diff(arrivals) * 1000)
    return (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0, gaps


def frame_ages(vehicle: TelloVehicle, seconds: float) -> tuple[list[float], float]:
    ages, seen = [], None
    end = time.monotonic() + seconds
    first_index = vehicle.camera.frames_decoded
    while time.monotonic() < end:
        frame = vehicle.camera.read()
        if frame is not None and frame is not seen:
            seen = frame
            stamp = read_stamp(frame.image)
            if stamp is not None:
                # The stamp's age now, minus how long the frame has waited since it was decoded.
                ages.append(stamp_age_ms(stamp) - (time.monotonic() - frame.t_s) * 1000)
        time.sleep(0.002)
    return ages, (vehicle.camera.frames_decoded - first_index) / seconds


def rc_rate(vehicle: TelloVehicle, seconds: float) -> float:
    sent = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        vehicle.send_velocity(Velocity(0, 0, 0, 0))
        sent += 1
        time.sleep(0.002)  # djitellopy spaces rc by >= 1 ms; 2 ms = a 500 Hz ceiling, far above any need
    return sent / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--round-trips", type=int, default=40)
    args = parser.parse_args()
    emulator = subprocess.Popen([sys.executable, "-m", "edgepilot.pilot.app.cli", "emulate-tello", "--duration", "600"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = emulator.stdout.readline()
        if "listening" not in line:
            print(f"emulator did not start: {line.strip()} {emulator.stdout.read()[-500:]}")
            return 1
        theirs = djitellopy_round_trips(args.round_trips // 2)
        started = time.monotonic()
        vehicle = TelloVehicle(TelloConfig(video=True)).connect()
        connect_s = time.monotonic() - started
        try:
            ours = round_trips(vehicle, args.round_trips)
            hz, gaps = state_rate(vehicle, args.seconds)
            ages, fps = frame_ages(vehicle, args.seconds)
            rc_hz = rc_rate(vehicle, args.seconds)
        finally:
            vehicle.close()
    finally:
        emulator.send_signal(signal.SIGINT)
        tail = emulator.communicate(timeout=10)[0].strip().splitlines()
    received = next((line for line in tail if "datagrams received" in line), "")
    print(f"connect (command + first state + streamon + first frame): {connect_s * 1000:.0f} ms")
    print(f"command round trip, edgepilot backend:      {stats(ours)}")
    print(f"command round trip, djitellopy blocking:    {stats(theirs)}")
    if ours and theirs:
        print(f"  ratio djitellopy / edgepilot (medians):   {np.median(theirs) / np.median(ours):.1f}x")
    print(f"state update rate: {hz:.2f} Hz (Tello: 10 Hz); inter-arrival {stats(gaps)}")
    print(f"video: {fps:.1f} decoded frames/s; glass-to-decode frame age {stats(ages)}")
    print(f"sustained rc: {rc_hz:.0f} set-points/s sent for {args.seconds:g} s; emulator: {received}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
