"""The web cockpit in a real browser: Debian's chromium, headless, driven through its chromedriver by Selenium (no
browser is downloaded; `.ci/run` installs both). A simulated drone flies in real time behind the page."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest

from edgepilot.pilot.app.web.access import Bind
from edgepilot.pilot.app.web.server import Cockpit
from edgepilot.pilot.core.clock import MonotonicClock
from edgepilot.pilot.core.perception import PerceptionWorker
from edgepilot.pilot.core.runner import Pilot
from edgepilot.sim.render import SimCamera
from edgepilot.sim.vehicles import SimDrone
from edgepilot.sim.world import World

# One browser and one live run for the module, its tests in order (each starts where the previous left the drone):
# one xdist worker runs them all.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
TOKEN = "browser-test-token"
HZ = 30.0


@pytest.fixture(scope="module")
def browser():
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("the browser tests need Debian's chromium and chromium-driver: apt-get install chromium "
                    "chromium-driver (as .ci/run does)")
    os.environ["SE_OFFLINE"] = "true"  # Selenium must never fetch a browser or driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,800"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


class Probe:
    """A tap that notes the wall time of every tick's set-point and every command the pilot executed."""

    def __init__(self) -> None:
        self.ticks: list[tuple[float, object, object]] = []  # (monotonic s, velocity sent or None, telemetry)
        self.commands: list[tuple[float, str, str]] = []  # (monotonic s, command, source)

    def on_tick(self, t_s, telemetry, seen, velocity, mode) -> None:
        self.ticks.append((time.monotonic(), velocity, telemetry))

    def on_command(self, record) -> None:
        self.commands.append((time.monotonic(), record.command, record.source))

    def on_event(self, event) -> None: ...


class LiveRun:
    def __init__(self) -> None:
        clock = MonotonicClock()
        self.drone = SimDrone(clock)
        camera = SimCamera(World.build(0, "drone"), self.drone, clock)
        self.pilot = Pilot(self.drone, clock=clock, hz=HZ, max_duration_s=180)
        self.probe = Probe()
        self.submitted: list[tuple[float, str]] = []
        submit = self.pilot.submit

        def noted_submit(command) -> None:
            self.submitted.append((time.monotonic(), command.text))
            submit(command)

        self.pilot.submit = noted_submit  # type: ignore[method-assign]
        self.cockpit = Cockpit(Bind("127.0.0.1", 0), TOKEN)
        self.url = self.cockpit.start()[0]
        self.cockpit.attach(self.pilot)
        self.pilot.add_tap(self.probe)
        self.worker = PerceptionWorker(camera, None, self.pilot.seen.set).start()
        self.thread = threading.Thread(target=self.pilot.run, kwargs={"stay_alive": self.cockpit.stay_alive})
        self.thread.start()

    def close(self) -> None:
        self.cockpit.end_requested.set()
        self.thread.join(timeout=30)
        self.worker.stop()
        self.cockpit.stop()

    def state(self) -> dict:
        return self.cockpit.status.snapshot()


@pytest.fixture(scope="module")
def live():
    run = LiveRun()
    yield run
    run.close()


def wait_for(condition, timeout_s: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def moving(velocity) -> bool:
    return velocity is not None and not velocity.is_zero


def test_page_loads_with_the_token_and_shows_live_video_and_telemetry(browser, live):
    browser.get(live.url)
    wait_for(lambda: browser.execute_script("return window.cockpit.frames()") >= 3, what="video frames")
    seq = "return Number(document.getElementById('video').dataset.seq)"  # read in the page: the element may be redrawn
    first = browser.execute_script(seq)
    ticks = browser.execute_script("return window.cockpit.state().ticks")
    time.sleep(0.6)
    assert browser.execute_script(seq) > first  # the picture changes
    assert browser.execute_script("return window.cockpit.state().ticks") > ticks  # so does the telemetry
    loop = browser.execute_script("return document.querySelector('td[data-field=loop]').textContent")
    assert re.match(r"\d+\.\d Hz of 30", loop), loop
    browser.get(live.url.split("?")[0])  # the cookie from the first load is enough now
    wait_for(lambda: browser.execute_script("return window.cockpit.frames()") >= 1, what="video with the cookie")


def test_take_off_stop_and_keyboard_teleop_with_dead_man(browser, live):
    from selenium.webdriver.common.action_chains import ActionChains

    browser.get(live.url)
    wait_for(lambda: browser.execute_script("return window.cockpit.state() !== null"), what="first state")
    browser.find_element("id", "btn-takeoff").click()
    wait_for(lambda: live.state()["mode"] == "hovering", what="the drone to take off and hover")
    assert live.state()["flying"] and live.state()["height_cm"] > 50
    assert live.probe.commands[0][1:] == ("takeoff", "web")

    # Hold w: the drone flies forward; release: it stops within 0.5 s.
    x0 = live.state()["pose"]["x_cm"]
    ActionChains(browser).key_down("w").perform()
    time.sleep(1.2)
    ActionChains(browser).key_up("w").perform()
    released = time.monotonic()
    time.sleep(0.8)
    assert live.state()["pose"]["x_cm"] > x0 + 15
    last_push = max(t for t, v, _ in live.probe.ticks if moving(v))
    assert last_push - released < 0.5

    # STOP while flying forward: the next tick hovers.
    ActionChains(browser).key_down("w").perform()
    time.sleep(0.5)
    browser.find_element("id", "stop").click()
    sent = wait_for(lambda: next((t for t, text in live.submitted if text == "stop"), None), what="STOP sent")
    done = wait_for(lambda: next((t for t, c, s in live.probe.commands if c == "stop" and s == "web"), None),
                    what="STOP executed")
    ticks_between = sum(1 for t, _, _ in live.probe.ticks if sent < t < done)
    assert ticks_between <= 1, f"STOP took {ticks_between} ticks"
    time.sleep(0.3)
    assert not any(moving(v) for t, v, _ in live.probe.ticks if t > done)
    ActionChains(browser).key_up("w").perform()

    # Emergency armed by one tap, then space (STOP): a stop, never the emergency through the focused button.
    browser.find_element("id", "btn-emergency").click()
    ActionChains(browser).send_keys(" ").perform()
    time.sleep(0.5)
    web = [command for _, command, source in live.probe.commands if source == "web"]
    assert "emergency" not in web and web[-1] == "stop"
    assert live.state()["flying"]


def test_closing_the_page_while_driving_stops_the_vehicle(browser, live):
    from selenium.webdriver.common.action_chains import ActionChains

    wait_for(lambda: live.state()["mode"] == "hovering", what="hovering")
    cockpit_tab = browser.current_window_handle  # the page in control since the previous test
    browser.switch_to.new_window("tab")
    spare = browser.current_window_handle
    browser.switch_to.window(cockpit_tab)
    ActionChains(browser).key_down("w").perform()
    wait_for(lambda: moving(live.probe.ticks[-1][1]), what="driving forward")
    browser.close()  # the tab, with the key still held
    closed = time.monotonic()
    browser.switch_to.window(spare)
    time.sleep(1.0)
    last_push = max(t for t, v, _ in live.probe.ticks if moving(v))
    assert last_push - closed < 0.5
    assert live.state()["speed_cm_s"] < 5


def test_phone_in_landscape_flies_with_the_touch_stick(browser, live):
    from selenium.webdriver.common.action_chains import ActionChains

    wait_for(lambda: live.state()["mode"] == "hovering", what="hovering")
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",  # a phone held in landscape
                            {"width": 844, "height": 390, "deviceScaleFactor": 2, "mobile": True})
    try:
        browser.get(live.url)
        wait_for(lambda: browser.execute_script("return window.cockpit.frames()") >= 2, what="video")
        if "sticks" not in browser.find_element("tag name", "body").get_attribute("class"):
            browser.find_element("id", "btn-sticks").click()  # shown by default on touch screens
        width, height = browser.execute_script("return [innerWidth, innerHeight]")
        for element in ("stop", "video", "stick-right"):
            box = browser.find_element("id", element).rect
            assert box["width"] > 40 and box["x"] >= 0 and box["y"] >= 0, element
            assert box["x"] + box["width"] <= width + 1 and box["y"] + box["height"] <= height + 1, element
        x0 = live.state()["pose"]["x_cm"]
        stick = browser.find_element("id", "stick-right")
        ActionChains(browser).move_to_element(stick).click_and_hold().move_by_offset(0, -40).perform()
        wait_for(lambda: live.state()["pose"]["x_cm"] > x0 + 10, what="flying forward on the stick")
        ActionChains(browser).release().perform()
        released = time.monotonic()
        time.sleep(0.8)
        last_push = max(t for t, v, _ in live.probe.ticks if moving(v))
        assert last_push - released < 0.5
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_gamepad_sticks_drive_and_b_stops(browser, live):
    wait_for(lambda: live.state()["mode"] == "hovering", what="hovering")
    browser.get(live.url)
    wait_for(lambda: browser.execute_script("return window.cockpit.state() !== null"), what="the page")
    # A standard-mapping gamepad, right stick pushed forward (the browser's Gamepad API, stubbed: no pad here).
    browser.execute_script("window.pad = {axes: [0, 0, 0, -1], buttons: [{pressed: false}, {pressed: false}]};"
                           "navigator.getGamepads = () => [window.pad];")
    x0 = live.state()["pose"]["x_cm"]
    wait_for(lambda: live.state()["pose"]["x_cm"] > x0 + 10, what="flying forward on the gamepad")
    pressed = time.monotonic()
    browser.execute_script("window.pad.axes = [0, 0, 0, 0]; window.pad.buttons[1].pressed = true;")
    wait_for(lambda: any(c == "stop" and t > pressed for t, c, _ in live.probe.commands), what="B = STOP")
    browser.execute_script("navigator.getGamepads = () => [];")
    time.sleep(0.6)
    assert not moving(live.probe.ticks[-1][1])


def test_take_off_from_the_page_of_a_cli_run(browser, tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "edgepilot.pilot.app.cli", "fly", "--web", "0",
                                "--max-duration", "60"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        line = process.stderr.readline()
        url = re.search(r"http://\S+", line).group(0)
        browser.get(url)
        wait_for(lambda: browser.execute_script("return window.cockpit.state() !== null && "
                                                "window.cockpit.state().ticks > 0"), timeout_s=30, what="the run")
        browser.find_element("id", "btn-takeoff").click()
        wait_for(lambda: browser.execute_script("return window.cockpit.state().flying"), what="flying")
        wait_for(lambda: browser.execute_script("return window.cockpit.state().height_cm > 50"), what="height")
        assert browser.find_element("id", "mode").text in ("taking off", "hovering")
        browser.find_element("id", "btn-land").click()
        wait_for(lambda: browser.execute_script("return window.cockpit.state().mode === 'landed'"), what="landed")
        browser.find_element("id", "end-run").click()
        browser.switch_to.alert.accept()  # "End the run?"
        process.wait(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0  # the page ended the run; it had completed
