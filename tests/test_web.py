"""The web cockpit without a browser: its security (token, Host, Origin), the JSON snapshot, the latest-frame-only
video, and `--web` from the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import re
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from edgepilot.pilot.app.status import RunStatus
from edgepilot.pilot.app.web.access import Bind, host_allowed, origin_allowed, parse_bind
from edgepilot.pilot.app.web.server import Cockpit
from edgepilot.pilot.core.errors import InputError
from edgepilot.pilot.core.messages import Frame, Seen, Telemetry
from edgepilot.pilot.core.runner import Mode

TOKEN = "test-token-123456"


def test_bind_and_header_rules():
    assert parse_bind("8080") == Bind("127.0.0.1", 8080)
    assert parse_bind("0.0.0.0:80") == Bind("0.0.0.0", 80) and not parse_bind("0.0.0.0:80").loopback
    assert parse_bind("[::1]:9000") == Bind("::1", 9000) and parse_bind("[::1]:9000").loopback
    for bad in ("http", "host:", "70000"):
        with pytest.raises(InputError, match="--web"):
            parse_bind(bad)
    assert host_allowed("127.0.0.1:8080") and host_allowed("localhost") and host_allowed("[::1]:80")
    assert host_allowed("192.168.1.20:8080")
    assert not host_allowed("evil.example:8080") and not host_allowed("127.0.0.1.nip.io") and not host_allowed(None)
    assert origin_allowed(None, "127.0.0.1:8080") and origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080")
    assert not origin_allowed("http://evil.example", "127.0.0.1:8080")
    assert not origin_allowed("http://127.0.0.1:9999", "127.0.0.1:8080")


def _seen(index: int) -> Seen:
    image = np.full((120, 160, 3), index % 255, np.uint8)
    return Seen(index / 30, 160, 120, (), Frame(image, index / 30, index))


@pytest.fixture
def cockpit():
    status = RunStatus("sim-drone", "drone")
    server = Cockpit(Bind("127.0.0.1", 0), TOKEN, status)
    server.start()
    yield server
    server.stop()


def _get(url: str, headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_every_request_needs_the_token_and_a_local_host_header(cockpit):
    base = f"http://127.0.0.1:{cockpit.port}"
    assert _get(base + "/")[0] == 401
    assert _get(base + "/api/state")[0] == 401
    assert _get(base + "/static/cockpit.js")[0] == 401
    assert _get(base + "/?token=wrong-token-000")[0] == 403
    status, page = _get(f"{base}/?token={TOKEN}")
    assert status == 200 and "cockpit.js" in page
    assert _get(base + "/api/state", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
    assert _get(base + "/api/state", {"Cookie": f"edgepilot_token={TOKEN}"})[0] == 200
    assert _get(f"{base}/?token={TOKEN}", {"Host": "evil.example"})[0] == 403  # DNS rebinding
    assert _get(f"{base}/?token={TOKEN}", {"Host": f"localhost:{cockpit.port}"})[0] == 200


def test_state_is_the_status_snapshot(cockpit):
    cockpit.status.on_tick(1.5, Telemetry(1.5, z_cm=80, flying=True, battery_pct=90, last_state_s=1.5), None, None,
                           Mode.HOVERING)
    status, body = _get(f"http://127.0.0.1:{cockpit.port}/api/state?token={TOKEN}")
    state = json.loads(body)
    assert status == 200 and state["mode"] == "hovering" and state["flying"] is True
    assert state["height_cm"] == 80 and state["battery_pct"] == 90
    assert state.keys() == cockpit.status.snapshot().keys()


async def _ws_frames(url: str, origin: str | None, feed, ack: bool, seconds: float) -> list[int]:
    """The frame numbers a page receives while ``feed`` runs on a thread, and ``seconds`` after."""
    headers = {"Origin": origin} if origin else {}
    seqs: list[int] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=headers) as ws:
        feeding = asyncio.get_running_loop().run_in_executor(None, feed)
        deadline = None
        while deadline is None or (left := deadline - time.monotonic()) > 0:
            if deadline is None and feeding.done():
                deadline = time.monotonic() + seconds
                continue
            left = 0.05 if deadline is None else left
            try:
                message = await ws.receive(timeout=left)
            except TimeoutError:
                continue
            if message.type == aiohttp.WSMsgType.BINARY:
                seq = struct.unpack(">I", message.data[:4])[0]
                assert message.data[4:6] == b"\xff\xd8"  # a JPEG
                seqs.append(seq)
                if ack:
                    await ws.send_str(json.dumps({"type": "ack", "seq": seq}))
            elif message.type != aiohttp.WSMsgType.TEXT:
                break
    return seqs


def test_websocket_from_another_origin_is_refused(cockpit):
    url = f"http://127.0.0.1:{cockpit.port}/ws?token={TOKEN}"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        asyncio.run(_ws_frames(url, "http://evil.example", lambda: None, True, 0.1))
    assert refused.value.status == 403
    asyncio.run(_ws_frames(url, f"http://127.0.0.1:{cockpit.port}", lambda: None, True, 0.1))  # its own: fine
    request = urllib.request.Request(f"http://127.0.0.1:{cockpit.port}/api/command?token={TOKEN}",
                                     data=b'{"command": "takeoff"}', method="POST",
                                     headers={"Origin": "http://evil.example", "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as post:
        urllib.request.urlopen(request, timeout=5)
    assert post.value.code == 403


def test_a_post_without_a_command_says_what_to_send(cockpit):
    request = urllib.request.Request(f"http://127.0.0.1:{cockpit.port}/api/command?token={TOKEN}",
                                     data=b'{"text": "takeoff"}', method="POST",
                                     headers={"Origin": f"http://127.0.0.1:{cockpit.port}",
                                              "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as post:
        urllib.request.urlopen(request, timeout=5)
    assert post.value.code == 400
    assert json.loads(post.value.read()) == {"error": 'send JSON: {"command": "takeoff"}'}


def test_video_is_latest_frame_only_and_silent_when_nothing_changes(cockpit):
    status = cockpit.status
    url = f"http://127.0.0.1:{cockpit.port}/ws?token={TOKEN}"
    telemetry = Telemetry(0.0)

    def feed_many() -> None:
        for i in range(1, 61):  # 60 new frames in ~0.6 s
            status.on_tick(i / 30, telemetry, _seen(i), None, Mode.LANDED)
            time.sleep(0.01)

    def feed_once() -> None:
        seen = _seen(100)
        for i in range(30):  # the same frame, tick after tick
            status.on_tick(4 + i / 30, telemetry, seen, None, Mode.LANDED)
            time.sleep(0.01)

    async def run() -> tuple[list[int], list[int], list[int]]:
        # A viewer that never acknowledges gets one frame, however many are made: nothing queues for it.
        stuck = await _ws_frames(url, None, feed_many, False, 0.3)
        eager = await _ws_frames(url, None, feed_many, True, 0.3)
        same = await _ws_frames(url, None, feed_once, True, 0.3)
        return stuck, eager, same

    stuck, eager, same = asyncio.run(run())
    assert len(stuck) == 1
    assert len(eager) >= 10 and eager == sorted(eager)
    assert len(same) <= 2  # the last frame it had not seen yet, then the unchanged one once: nothing more
    assert cockpit.latency_s and all(0 <= s < 1 for s in cockpit.latency_s)


def _start_cli(tmp_path: Path, *args: str, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "edgepilot.pilot.app.cli", *args], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 60
    lines = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        lines.append(line)
        if match := re.search(r"http://\S+", line):
            return process, match.group(0)
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError("no cockpit URL printed: " + "".join(lines))


def _finish(process: subprocess.Popen, timeout_s: float = 30.0) -> tuple[str, str]:
    """Wait for the run to end; its output (read through the same buffers as the URL line was)."""
    process.wait(timeout=timeout_s)
    return process.stdout.read(), process.stderr.read()


def _wait_state(base: str, condition, timeout_s: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        state = json.loads(_get(f"{base}/api/state?token={TOKEN}")[1])
        if condition(state) or time.monotonic() > deadline:
            return state
        time.sleep(0.1)


@pytest.mark.slow
def test_fly_with_web_and_no_script_waits_for_the_page_and_ends_on_its_end_run(tmp_path):
    process, url = _start_cli(tmp_path, "fly", "--web", "0", "--web-token", TOKEN, "--json")
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith(f"/?token={TOKEN}")
        base = url.split("/?")[0]
        state = _wait_state(base, lambda s: s["ticks"] > 10)
        assert state["mode"] == "landed" and state["flying"] is False
        post = urllib.request.Request(f"{base}/api/command?token={TOKEN}", data=b'{"command": "takeoff"}',
                                      method="POST", headers={"Content-Type": "application/json"})
        assert urllib.request.urlopen(post, timeout=5).status == 202
        state = _wait_state(base, lambda s: s["mode"] == "hovering")
        assert state["flying"] is True and state["commands"][0]["source"] == "web"
        urllib.request.urlopen(urllib.request.Request(f"{base}/api/end?token={TOKEN}", data=b"", method="POST"),
                               timeout=5)
        out, err = _finish(process)
    finally:
        process.kill()
    assert process.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert [c["command"] for c in result["commands"]] == ["takeoff"] and result["final"]["flying"] is False


@pytest.mark.slow
def test_web_bind_on_every_interface_warns_and_the_env_token_is_used(tmp_path):
    process, url = _start_cli(tmp_path, "fly", "--web", "0.0.0.0:0", "--max-duration", "0.5",
                              env={"EDGEPILOT_WEB_TOKEN": "from-the-env-1"})
    out, err = _finish(process)
    assert url.endswith("/?token=from-the-env-1")
    assert "WARNING" in err and "anyone on this network" in err
    assert process.returncode == 0


@pytest.mark.parametrize("args, message", [
    (["--web", "nope"], "--web takes [HOST:]PORT"),
    (["--web", "8080", "--web-token", "short"], "at least 8"),
    (["--script", "takeoff", "--web-token", "long-enough-1"], "--web-token needs --web"),
    (["--web", "0", "--fast"], "--fast"),
])
def test_bad_web_options_say_what_is_wrong(args, message, capsys):
    from edgepilot.pilot.app import cli

    assert cli.main(["fly", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_record_writes_the_annotated_video_in_real_time(tmp_path):
    import av

    status = RunStatus("sim-drone", "drone")
    cockpit = Cockpit(Bind("127.0.0.1", 0), TOKEN, status, out_dir=tmp_path)
    cockpit.start()
    url = f"http://127.0.0.1:{cockpit.port}/ws?token={TOKEN}"
    telemetry = Telemetry(0.0)

    async def run() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            await ws.send_str(json.dumps({"type": "record"}))
            await asyncio.sleep(0.2)
            assert status.snapshot()["clip"] is not None
            for i in range(1, 16):  # 15 frames 0.1 s apart: 1.5 s of video
                status.on_tick(i / 10, telemetry, Seen(i / 10, 160, 120, (), Frame(
                    np.full((120, 160, 3), 10 * i, np.uint8), i / 10, i)), None, Mode.LANDED)
                await asyncio.sleep(0.03)
            await ws.send_str(json.dumps({"type": "record"}))
            await asyncio.sleep(0.2)

    try:
        asyncio.run(run())
    finally:
        cockpit.stop()
    assert status.snapshot()["clip"] is None
    (clip,) = tmp_path.glob("cockpit-*.mp4")
    with av.open(str(clip)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert 38 <= frames <= 43  # 14 gaps of 0.1 s at 30 fps, plus the first frame


@pytest.mark.slow
def test_replay_with_web_shows_the_recording_in_real_time_read_only(tmp_path):
    from edgepilot.pilot.app import cli

    assert cli.main(["fly", "--fast", "--script", "takeoff; up 50; land", "--record", str(tmp_path / "run"),
                     "--json"]) == 0
    process, url = _start_cli(tmp_path, "replay", str(tmp_path / "run"), "--web", "0", "--web-token", TOKEN)
    base = url.split("/?")[0]
    try:
        state = _wait_state(base, lambda s: s["ticks"] > 0)
        started = time.monotonic()
        assert state["replay"]["total_s"] > 3
        later = _wait_state(base, lambda s: s["t_s"] > state["t_s"] + 1.0)
        assert time.monotonic() - started >= 0.8  # paced like the run, not as fast as it can
        assert later["flying"] is True
        post = urllib.request.Request(f"{base}/api/command?token={TOKEN}", data=b'{"command": "land"}',
                                      method="POST", headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(post, timeout=5)
        assert refused.value.code == 409 and b"replay" in refused.value.read()
        out, err = _finish(process)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "all identical" in out


def test_a_port_in_use_is_one_clear_line(capsys):
    import socket

    from edgepilot.pilot.app import cli

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["fly", "--web", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"--web {port}: cannot listen there" in err and "Traceback" not in err
