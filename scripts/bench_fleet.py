"""Benchmark a fleet on the bus: ``edgepilot fleet emulate --tellos N`` for N = 1, 4, 8, measured at a ground station.

    sudo python scripts/bench_fleet.py [--tellos 1 4 8] [--cars 0] [--seconds 10]

Runs itself inside a private network and mount namespace (its own loopback and /run/netns: nothing shared with the
machine or another run). For each N it starts the fleet (N Tello emulators, each in its namespace at 192.168.10.1
with its own companion ``edgepilot fly --vehicle tello --bus zenoh`` process, M sim cars, one zenoh router) and
measures at a ground station (a :class:`FleetView` on the router):

* telemetry rate per vehicle and delivery latency (the vehicle's wall clock when it published to the ground's when
  it arrived; one machine, one clock), p50 / p95;
* command latency ground -> vehicle: ``speed 50`` put on the bus to the vehicle's loop dispatching it (its command
  record's run time mapped to the wall clock through its telemetry), p50 / p95; includes waiting for the next tick;
* CPU (% of one core) and resident memory of each vehicle process and each emulator, from /proc;
* bytes per second per vehicle on each key (what 50 vehicles would need);
* what the bus adds to the control loop's jitter: a simulated drone flies the same script with and without
  ``--bus`` while the fleet runs, three times each, interleaved (medians of its loop's p99 period / jitter and
  overruns, from ``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections import defaultdict

import numpy as np

from edgepilot.pilot.app.bus import BusConfig, open_session
from edgepilot.pilot.app.fleet_view import FleetView

CLI = [sys.executable, "-m", "edgepilot.pilot.app.cli"]
TICK_S = os.sysconf("SC_CLK_TCK")
JITTER_SCRIPT = "takeoff; cw 90; wait 4; ccw 90; land"
JITTER_RUNS = 3


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def proc_stat(pid: int) -> tuple[float, float]:
    """(CPU seconds used, resident MB) of a process."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / TICK_S
    with open(f"/proc/{pid}/status") as handle:
        rss_kb = next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:"))
    return cpu_s, rss_kb / 1024


def fleet_processes(parent: int) -> dict[str, int]:
    """name -> pid of every vehicle process (by its --name) and emulator (emulatorK) that ``parent`` started."""
    found: dict[str, int] = {}
    emulators = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().decode(errors="ignore").split("\0")
        except OSError:
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if ppid != parent or "edgepilot.pilot.app.cli" not in argv:
            continue
        if "--name" in argv and ("fly" in argv or "drive" in argv):
            found[argv[argv.index("--name") + 1]] = int(entry)
        elif "emulate-tello" in argv:
            emulators.append(int(entry))
    for k, pid in enumerate(sorted(emulators)):
        found[f"emulator{k + 1}"] = pid
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def loop_run(port: int | None) -> dict:
    """A simulated drone's loop statistics for one flight, on the bus (``port``) or not."""
    argv = [*CLI, "fly", "--vehicle", "sim", "--script", JITTER_SCRIPT, "--json"]
    if port is not None:
        argv += ["--bus", "zenoh", "--name", "jitter", "--bus-connect", f"tcp/127.0.0.1:{port}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    return json.loads(done.stdout.splitlines()[-1])["loop"]


def median_loop(runs: list[dict]) -> dict:
    """Each loop statistic's median over several flights."""
    return {k: round(float(np.median([r[k] for r in runs])), 2) for k in ("achieved_hz", "overruns", "p99_period_ms",
                                                                         "p99_jitter_ms")}


def measure(tellos: int, cars: int, seconds: float) -> dict:
    port = free_port()
    fleet = subprocess.Popen([*CLI, "fleet", "emulate", "--tellos", str(tellos), "--cars", str(cars), "--port",
                              str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    session = open_session(BusConfig(connect=(f"tcp/127.0.0.1:{port}",)))
    view = FleetView(session, tag="bench")
    names = [f"tello{i + 1}" for i in range(tellos)] + [f"car{j + 1}" for j in range(cars)]
    bytes_by: dict[tuple[str, str], int] = defaultdict(int)
    counting = {"on": False}

    def count(sample) -> None:
        if counting["on"]:
            _, name, topic = str(sample.key_expr).split("/", 2)
            bytes_by[(name, topic)] += len(sample.payload.to_bytes())

    counter = session.declare_subscriber("edgepilot/**", count)
    try:
        if not view.wait_for(lambda v: all(v.get(n).alive and v.get(n).telemetry for n in names), 90):
            missing = [n for n in names if not view.get(n).telemetry]
            raise SystemExit(f"N={tellos}: not on the bus after 90 s: {missing}: {fleet.stderr}")
        time.sleep(3.0)  # warm-up
        procs = fleet_processes(fleet.pid)
        before = {name: proc_stat(pid) for name, pid in procs.items()}
        counting["on"] = True
        started = time.monotonic()
        time.sleep(seconds)
        counting["on"] = False
        window = time.monotonic() - started
        after = {name: proc_stat(pid) for name, pid in procs.items() if os.path.exists(f"/proc/{pid}")}
        rates, latencies = [], []
        for name in names:
            arrivals = [(t, lat) for t, lat in list(view.get(name).arrivals) if started <= t <= started + window]
            rates.append(len(arrivals) / window)
            latencies += [lat * 1000 for _, lat in arrivals if lat is not None]
        command_ms = command_latency(view, names)
        cpu = {n: 100 * (after[n][0] - before[n][0]) / window for n in after}
        rss = {n: after[n][1] for n in after}
        per_vehicle_bytes = defaultdict(float)
        for (name, topic), total in bytes_by.items():
            if name in names:
                per_vehicle_bytes[topic] += total / window / len(names)
        runs = {"bus": [], "plain": []}
        for _ in range(JITTER_RUNS):  # interleaved: the machine's load drifts
            runs["bus"].append(loop_run(port))
            runs["plain"].append(loop_run(None))
        bus_loop, plain_loop = (median_loop(runs[k]) for k in ("bus", "plain"))
    finally:
        counter.undeclare()
        view.close()
        session.close()
        fleet.terminate()
        try:
            fleet.wait(timeout=60)
        except subprocess.TimeoutExpired:
            fleet.kill()
    vehicles = [n for n in names if n in cpu]
    emulators = [n for n in cpu if n.startswith("emulator")]
    return {
        "tellos": tellos, "cars": cars, "window_s": round(window, 1),
        "telemetry_hz_min": round(min(rates), 1), "telemetry_hz_median": round(float(np.median(rates)), 1),
        "telemetry_latency_ms_p50": round(pct(latencies, 50), 2),
        "telemetry_latency_ms_p95": round(pct(latencies, 95), 2),
        "command_latency_ms_p50": round(pct(command_ms, 50), 1), "command_latency_ms_p95": round(pct(command_ms, 95), 1),
        "vehicle_cpu_pct_median": round(float(np.median([cpu[n] for n in vehicles])), 1),
        "vehicle_rss_mb_median": round(float(np.median([rss[n] for n in vehicles])), 1),
        "emulator_cpu_pct_median": round(float(np.median([cpu[n] for n in emulators])), 1) if emulators else None,
        "emulator_rss_mb_median": round(float(np.median([rss[n] for n in emulators])), 1) if emulators else None,
        "bytes_per_s_per_vehicle": {k: round(v) for k, v in sorted(per_vehicle_bytes.items())},
        "loop_with_bus": bus_loop, "loop_without_bus": plain_loop,
    }


def command_latency(view: FleetView, names: list[str], rounds: int = 10) -> list[float]:
    """ms from putting ``speed 50`` on the bus to the vehicle's loop dispatching it."""
    out: list[float] = []
    for _ in range(rounds):
        for name in names:
            vehicle = view.get(name)
            seen = len(vehicle.commands)
            put_unix = time.time()
            view.send(name, "speed 50")
            if not view.wait_for(lambda v, vehicle=vehicle, seen=seen: len(vehicle.commands) > seen, 5):
                continue
            record = vehicle.commands[seen]
            telemetry = vehicle.telemetry  # run time -> wall clock: sent_unix_s was stamped at its t_s
            offset = telemetry["sent_unix_s"] - telemetry["t_s"]
            out.append((record["t_s"] + offset - put_unix) * 1000)
        time.sleep(random.uniform(0.05, 0.15))  # not a multiple of the tick: sample every phase of the 30 Hz loop
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tellos", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--cars", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.inside:
        if os.geteuid() != 0 or not shutil.which("unshare"):
            raise SystemExit("bench_fleet needs root and unshare (network namespaces for the Tello emulators)")
        script = (f"ip link set lo up; mkdir -p /run/netns; mount -t tmpfs none /run/netns; "
                  f"exec {sys.executable} {os.path.abspath(__file__)} --inside --cars {args.cars} "
                  f"--seconds {args.seconds} --tellos {' '.join(map(str, args.tellos))}")
        raise SystemExit(subprocess.call(["unshare", "--net", "--mount", "sh", "-c", script]))
    results = []
    for n in args.tellos:
        result = measure(n, args.cars, args.seconds)
        results.append(result)
        print(json.dumps(result), flush=True)
    print()
    header = (f"{'N':>3} {'Hz min':>7} {'lat p50':>8} {'lat p95':>8} {'cmd p50':>8} {'cmd p95':>8} {'CPU %':>6} "
              f"{'RSS MB':>7} {'emu CPU':>8} {'B/s/veh':>8} {'p99 jit bus':>12} {'p99 jit no bus':>15}")
    print(header)
    for r in results:
        total = sum(r["bytes_per_s_per_vehicle"].values())
        print(f"{r['tellos']:>3} {r['telemetry_hz_min']:>7} {r['telemetry_latency_ms_p50']:>8} "
              f"{r['telemetry_latency_ms_p95']:>8} {r['command_latency_ms_p50']:>8} {r['command_latency_ms_p95']:>8} "
              f"{r['vehicle_cpu_pct_median']:>6} {r['vehicle_rss_mb_median']:>7} {str(r['emulator_cpu_pct_median']):>8} "
              f"{total:>8} {r['loop_with_bus']['p99_jitter_ms']:>12} {r['loop_without_bus']['p99_jitter_ms']:>15}")


if __name__ == "__main__":
    main()
