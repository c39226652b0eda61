#!/usr/bin/env python3
"""Benchmark the web cockpit: what it costs the 30 Hz control loop and how late its video is.

A simulated drone hovers in real time with its camera rendered (640x480) and published by the perception thread (no
detector, to isolate the server). Phases of --seconds each, side by side:

- ``no web``: the same run without a cockpit (the baseline for jitter and CPU);
- ``0 viewers``: the cockpit listening, nobody watching (no frame is encoded);
- ``1 viewer`` / ``3 viewers``: WebSocket clients in another process that take every frame and acknowledge it at
  once, as the page does after showing it;
- ``chromium``: one headless Debian chromium showing the real page (end to end on loopback).

Per phase: loop period jitter (median / p99 of |period - 1/hz|) and overruns, this process's CPU (% of one core),
frames sent per second, server-added latency (frame ready -> its bytes handed to the socket: annotate + JPEG + send,
p50 / p95), and with a page, frame ready -> the page's acknowledgement after it showed the frame (includes the ack's
trip back). Then the process's RSS before the cockpit started, with it idle and with three viewers.

    python scripts/bench_web.py                  # 8 s per phase
    python scripts/bench_web.py --seconds 15 --no-browser
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import threading
import time

import numpy as np

from edgepilot.pilot.app.web.access import Bind
from edgepilot.pilot.core.clock import MonotonicClock
from edgepilot.pilot.core.grammar import parse_command
from edgepilot.pilot.core.perception import PerceptionWorker
from edgepilot.pilot.core.runner import Pilot
from edgepilot.sim.render import SimCamera
from edgepilot.sim.vehicles import SimDrone
from edgepilot.sim.world import World

TOKEN = "bench-web-token"


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


class Run:
    """A hovering sim drone on a thread, optionally with the cockpit."""

    def __init__(self, web: bool) -> None:
        clock = MonotonicClock()
        drone = SimDrone(clock)
        camera = SimCamera(World.build(0, "drone"), drone, clock)
        self.pilot = Pilot(drone, clock=clock, max_duration_s=3600)
        self.cockpit = None
        self.rss_without_web = self.rss_with_web = rss_mb()
        if web:
            from edgepilot.pilot.app.web.server import Cockpit

            self.cockpit = Cockpit(Bind("127.0.0.1", 0), TOKEN)
            self.url = self.cockpit.start()[0]
            self.cockpit.attach(self.pilot)
            self.rss_with_web = rss_mb()
        self.stop = threading.Event()
        self.worker = PerceptionWorker(camera, None, self.pilot.seen.set).start()
        self.thread = threading.Thread(target=self.pilot.run, kwargs={"stay_alive": lambda: not self.stop.is_set()})
        self.thread.start()
        self.pilot.submit(parse_command("takeoff", "script"))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.worker.stop()
        if self.cockpit is not None:
            self.cockpit.stop()


def measure(run: Run, seconds: float) -> dict:
    stats = run.pilot.loop.stats
    periods0, overruns0 = len(stats.periods_s), stats.overruns
    cockpit = run.cockpit
    sent0 = len(cockpit.latency_s) if cockpit else 0
    shown0 = len(cockpit.shown_s) if cockpit else 0
    cpu0, wall0 = time.process_time(), time.monotonic()
    time.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    periods = np.asarray(stats.periods_s[periods0:])
    jitter_ms = np.abs(periods - 1.0 / stats.hz) * 1000.0
    row = {"jitter_p50_ms": float(np.median(jitter_ms)), "jitter_p99_ms": float(np.percentile(jitter_ms, 99)),
           "overruns": stats.overruns - overruns0, "cpu_pct": 100.0 * cpu / wall}
    if cockpit is not None:
        sent = np.asarray(cockpit.latency_s[sent0:]) * 1000.0
        shown = np.asarray(cockpit.shown_s[shown0:]) * 1000.0
        row["frames_per_s"] = len(sent) / wall
        if len(sent):
            row["sent_p50_ms"], row["sent_p95_ms"] = float(np.median(sent)), float(np.percentile(sent, 95))
        if len(shown):
            row["shown_p50_ms"], row["shown_p95_ms"] = float(np.median(shown)), float(np.percentile(shown, 95))
    return row


def viewers(url: str, count: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--viewers", url, str(count)])


def run_viewers(url: str, count: int) -> None:
    """WebSocket clients that acknowledge every frame at once (another process, like a browser)."""
    import aiohttp

    async def one(session: aiohttp.ClientSession) -> None:
        async with session.ws_connect(url.replace("/?", "/ws?")) as ws:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.BINARY:
                    await ws.send_str(json.dumps({"type": "ack", "seq": int.from_bytes(message.data[:4], "big")}))

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(one(session) for _ in range(count)))

    asyncio.run(main())


def chromium(url: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,800"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.get(url)
    return driver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--viewers", nargs=2, metavar=("URL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.viewers:
        run_viewers(args.viewers[0], int(args.viewers[1]))
        return
    warm = 3.0  # take-off and the first frames
    rows: dict[str, dict] = {}
    base = Run(web=False)
    time.sleep(warm)
    rows["no web"] = measure(base, args.seconds)
    base.close()

    run = Run(web=True)
    rss_before = run.rss_without_web
    time.sleep(warm)
    rss_idle = rss_mb()
    rows["0 viewers"] = measure(run, args.seconds)
    for count in (1, 3):
        clients = viewers(run.url, count)
        time.sleep(1.0)
        rows[f"{count} viewer{'s' if count > 1 else ''}"] = measure(run, args.seconds)
        rss_three = rss_mb()
        clients.terminate()
        clients.wait()
    if not args.no_browser and shutil.which("chromium"):
        driver = chromium(run.url)
        time.sleep(2.0)
        rows["chromium"] = measure(run, args.seconds)
        driver.quit()
    encode_ms = np.asarray(run.cockpit._encoder.encode_s) * 1000.0
    run.close()

    columns = ["jitter_p50_ms", "jitter_p99_ms", "overruns", "cpu_pct", "frames_per_s", "sent_p50_ms", "sent_p95_ms",
               "shown_p50_ms", "shown_p95_ms"]
    print(f"{'phase':<11}" + "".join(f"{c:>14}" for c in columns))
    for name, row in rows.items():
        cells = "".join(f"{row[c]:>14.1f}" if c in row else f"{'-':>14}" for c in columns)
        print(f"{name:<11}{cells}")
    print(f"annotate + JPEG encode per frame: median {np.median(encode_ms):.1f} ms, p95 "
          f"{np.percentile(encode_ms, 95):.1f} ms ({len(encode_ms)} frames, 640x480, quality 70)")
    print(f"RSS: {rss_before:.0f} MB before the cockpit started, {run.rss_with_web:.0f} MB just after "
          f"(+{run.rss_with_web - rss_before:.0f}), {rss_idle:.0f} MB idle {warm:g} s later, {rss_three:.0f} MB with "
          f"3 viewers (+{rss_three - rss_before:.0f})")
    print(json.dumps({"rows": rows, "rss_mb": {"before": rss_before, "idle": rss_idle, "three": rss_three}}))


if __name__ == "__main__":
    main()
