"""The pilot talks back (espeak-ng / flite through voice/tts.py), asks before a risky command it is unsure of, and
hands over to a person when autonomy is lost.

The synthesisers are real (CI installs espeak-ng and flite, .ci/run); the WAV a run writes with ``--speak-to`` is
checked against the run's ``said`` events: one stretch of sound per phrase, starting when it was said."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from edgepilot.pilot.app.cli import main
from edgepilot.pilot.app.talk import Talk, for_command, for_event, unsure
from edgepilot.pilot.core.behaviours import FollowConfig
from edgepilot.pilot.core.clock import FakeClock
from edgepilot.pilot.core.grammar import parse_command, parse_script
from edgepilot.pilot.core.handover import HandOver
from edgepilot.pilot.core.messages import Command, Event, Velocity
from edgepilot.pilot.core.runner import CommandRecord, Pilot
from edgepilot.sim.vehicles import make_sim_drone
from edgepilot.voice.tts import EspeakNg, Flite, Speaker, make_tts, timeline

RATE = 16000


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        assert wav.getframerate() == RATE and wav.getnchannels() == 1
        return np.frombuffer(wav.readframes(wav.getnframes()), "<i2")


def sound_starts(samples: np.ndarray, min_gap_s: float = 0.5) -> list[float]:
    """Start times (s) of the stretches of sound: 10 ms frames louder than -40 dBFS, gaps shorter than
    ``min_gap_s`` (the pauses between words, and at a "?": 0.37 s with espeak-ng) joined. Phrases are at least 0.6 s
    apart (voice/tts.py timeline)."""
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160).astype(np.float64)
    loud = np.sqrt((frames ** 2).mean(axis=1)) > 32768 * 10 ** (-40 / 20)
    starts, last = [], -1e9
    for i in np.flatnonzero(loud):
        if i * 0.01 - last > min_gap_s:
            starts.append(i * 0.01)
        last = i * 0.01
    return starts


@pytest.mark.parametrize("backend", [EspeakNg, Flite])
def test_backends_synthesise_16k_speech(backend):
    samples = backend().synthesize("taking off")
    assert samples.dtype == np.int16 and 0.4 < len(samples) / RATE < 2.5
    assert np.abs(samples).max() > 3000  # speech, not silence
    assert make_tts().name == "espeak-ng"


def test_speaker_writes_each_phrase_at_its_time(tmp_path):
    out = tmp_path / "said.wav"
    speaker = Speaker(EspeakNg(), wav=out)
    speaker.say("taking off", 0.5)
    speaker.say("landing", 3.0)
    speaker.close()
    speaker.close()  # idempotent
    starts = sound_starts(read_wav(out))
    assert len(starts) == 2 and abs(starts[0] - 0.5) < 0.1 and abs(starts[1] - 3.0) < 0.1
    assert [text for text, _, _ in speaker.said] == ["taking off", "landing"]


def test_timeline_never_overlaps():
    one = np.full(RATE, 1000, np.int16)  # 1 s
    out = timeline([(0.0, one), (0.5, one)], gap_s=0.25)
    assert len(out) == round((2.25 + 0.3) * RATE)


@pytest.mark.parametrize("command, result, said", [
    ("takeoff", "ok", "taking off"), ("up 50", "ok", "up 50"), ("follow Alice", "ok", "following Alice"),
    ("land", "ok", "landing"), ("cw 90", "ok", "turning right 90"), ("flip f", "ok", "flip forward"),
    ("ask flip f", "ok", "did you say flip forward? say yes"), ("pardon", "ok", "say again"),
    ("flip l", "rejected: battery 40% < 50%", "cannot flip left"), ("yes", "rejected: no question", "nothing to confirm"),
    ("wait 2", "ok", None),
])
def test_confirmations(command, result, said):
    assert for_command(CommandRecord(1.0, command, "voice", result)) == said


@pytest.mark.parametrize("type_, detail, said", [
    ("battery_low", "battery 15%: land soon", "battery 15 percent"),
    ("battery_land", "battery 10%: landing", "battery 10 percent, landing"),
    ("link_lost", "no state from the drone for 1.0 s: hovering, landing in 0.5 s", "link lost, landing"),
    ("target_lost", "cannot see Alice for 10 s: hovering; waiting for a command", "I lost Alice, hovering"),
    ("target_lost", "cannot see anybody for 10 s: hovering; waiting for a command", "I lost you, hovering"),
    ("plan_cancelled", "x", None),
])
def test_problems(type_, detail, said):
    assert for_event(Event(1.0, type_, detail)) == said


class Vocab:
    def command_text(self, words):
        return {("flip", "forward"): "flip forward", ("up", "fifty"): "up 50"}.get(tuple(words))


def risky(command: Command) -> bool:
    return command.verb == "flip"


@pytest.mark.parametrize("info, expected", [
    ({"text": "flip forward", "confidence": 0.8, "reason": "not sure enough (0.80 < 0.85)"}, "ask flip f"),
    ({"text": "flip forward", "confidence": 0.5, "reason": "not sure enough (0.50 < 0.85)"}, "pardon"),
    ({"text": "flip forward", "confidence": 1.0, "reason": "sounds like speech that is no command (fit -20.5 < -19.0)"},
     "ask flip f"),
    ({"text": "flip forward", "confidence": 1.0, "reason": "sounds like speech that is no command (fit -40.3 < -19.0)"},
     "pardon"),
    ({"text": "up fifty", "confidence": 0.5, "reason": "not sure enough (0.50 < 0.70)"}, "pardon"),
    ({"text": "fly up", "confidence": 1.0, "reason": "not a command"}, "pardon"),
    ({"text": "", "confidence": 0.0, "reason": "nothing recognised"}, None),
])
def test_unsure_asks_only_about_risky_commands_heard_well_enough(info, expected):
    command = unsure(info, Vocab(), 0.7, -22.0, risky)
    assert (command.text if command else None) == expected


def fly(argv: list[str], capsys) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["fly", "--fast", "--json", *argv])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_ask_then_yes_flips_and_the_wav_says_it_in_order(tmp_path, capsys):
    wav = tmp_path / "said.wav"
    code, run = fly(["--script", "takeoff; ask flip f; wait 1; yes; land", "--speak-to", str(wav)], capsys)
    assert code == 0
    commands = [(c["command"], c["result"]) for c in run["commands"]]
    assert ("flip f", "ok") in commands and commands.index(("yes", "ok")) < commands.index(("flip f", "ok"))
    said = [e for e in run["events"] if e["type"] == "said"]
    assert [e["detail"] for e in said] == ["taking off", "did you say flip forward? say yes", "flip forward", "landing"]
    assert [e["type"] for e in run["events"] if e["type"] in ("asked", "confirmed")] == ["asked", "confirmed"]
    starts = sound_starts(read_wav(wav))
    assert len(starts) == len(said)
    # Each phrase starts when it was said, or right after the one before if that was still speaking.
    for start, event in zip(starts, said, strict=True):
        assert start >= event["t_s"] - 0.05


def test_ask_without_yes_never_flips(tmp_path, capsys):
    code, run = fly(["--script", "takeoff; ask flip f; wait 7; land"], capsys)
    assert code == 0
    assert not any(c["command"] == "flip f" for c in run["commands"])
    assert [e["type"] for e in run["events"] if e["type"] in ("asked", "ask_expired")] == ["asked", "ask_expired"]
    code, run = fly(["--script", "takeoff; ask flip f; no; yes; land"], capsys)
    assert code == 1  # the stray "yes" is refused and ends the script (landing)
    assert not any(c["command"] == "flip f" for c in run["commands"])
    assert "no question is open" in next(c["result"] for c in run["commands"] if c["command"] == "yes")


def test_grammar_of_the_conversation():
    assert [c.text for c in parse_script("ask go forward 2 meters; yes; no; say again")] == \
        ["ask forward 200", "yes", "no", "pardon"]
    with pytest.raises(Exception, match="ask needs the command"):
        parse_command("ask yes")


class Said:
    def __init__(self) -> None:
        self.phrases: list[str] = []

    def __call__(self, text: str, t_s: float) -> None:
        self.phrases.append(text)


def lost_target_pilot(timeout_s: float = 30.0) -> tuple[Pilot, Said]:
    """A drone in the air following somebody who never shows up: nothing is ever seen."""
    clock = FakeClock()
    pilot = Pilot(make_sim_drone(clock=clock), clock=clock, hz=20, max_duration_s=60, can_see=True,
                  perceive=lambda now: None, follow_config=FollowConfig())
    pilot.handover = HandOver(timeout_s)
    said = Said()
    pilot.add_tap(Talk(said, pilot.note_event))
    return pilot, said


def test_lost_target_hands_over_hovers_and_waits_for_a_person():
    pilot, said = lost_target_pilot()
    late, poses = [], []

    def person(t_s: float) -> None:  # a person says "land" 5 s after the hand-over
        handover = next((e for e in pilot.result.events if e.type == "handover"), None)
        if handover is not None and not late:
            state = pilot.vehicle.telemetry()
            poses.append((state.x_cm, state.y_cm, state.z_cm, state.yaw_deg, state.flying))
            if t_s >= handover.t_s + 5.0:
                late.append(t_s)
                pilot.submit(Command("land", None, "voice"))

    original = pilot._tick
    pilot._tick = lambda t_s, now_s: (person(t_s), original(t_s, now_s))[1]
    result = pilot.run([Command("takeoff"), Command("follow", "me")])
    types = [e.type for e in result.events]
    assert types.index("target_lost") < types.index("handover") < types.index("taken_over")
    handover = next(e for e in result.events if e.type == "handover")
    taken = next(e for e in result.events if e.type == "taken_over")
    assert taken.detail.startswith("voice after 5.")
    assert pilot.handover.waits == [("target_lost", pytest.approx(5.0, abs=0.1))]
    assert "I lost you, hovering" in said.phrases and "waiting for your command" in said.phrases
    # Hovering between the hand-over and the person's command: in the air, and it did not move or turn (the first
    # half second after the hand-over, the simulated drone still slows its search turn: 1.4 deg).
    assert len(poses) > 90 and all(p[4] for p in poses)
    assert np.ptp(np.array(poses[10:])[:, :4], axis=0).max() < 0.5
    assert result.failure is None and not result.final.flying
    assert handover.t_s > 8.0  # hold + search time of the follow


def test_nobody_takes_over_lands():
    pilot, said = lost_target_pilot(timeout_s=3.0)
    result = pilot.run([Command("takeoff"), Command("follow", "me"), Command("wait", 12.0), Command("up", 50)])
    types = [e.type for e in result.events]
    assert "handover_timeout" in types and not result.final.flying
    assert "nobody took over in 3 s" in result.failure
    assert not any(c.command == "up 50" for c in result.commands)  # the script was held, then dropped
    assert "nobody answered, landing" in said.phrases


def test_speak_to_bad_folder_is_one_line(tmp_path, capsys):
    assert main(["fly", "--fast", "--script", "takeoff; land", "--speak-to", str(tmp_path / "no" / "x.wav")]) == 2
    assert "does not exist" in capsys.readouterr().err


VOICE = Path(__file__).parent / "data" / "voice"


def spoken_session(path: Path, files: list[str], gap_s: float = 1.0) -> None:
    """The recorded phrases (16 kHz mono) one after another with ``gap_s`` of silence between."""
    pieces = [np.zeros(RATE // 2, np.int16)]
    for name in files:
        pieces += [read_wav(VOICE / name), np.zeros(round(gap_s * RATE), np.int16)]
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(np.concatenate(pieces).tobytes())


@pytest.mark.slow
def test_voice_flight_asks_before_an_unsure_flip_and_says_again(tmp_path, capsys, monkeypatch):
    """A voice flight with the real recogniser: "take off", a sentence that is no command, "flip forward" heard less
    surely than a flip needs (the risky threshold is raised above any confidence, so the real recogniser's 1.0 falls
    short), "yes", "land". The pilot says "say again", asks, flips only after the "yes", and its WAV holds what it
    said in order, one stretch of sound per phrase."""
    from edgepilot.voice import listener as listener_module

    original = listener_module.VoiceListener.__init__

    def unsure_of_flips(self, *args, **kwargs):
        original(self, *args, **{**kwargs, "config": listener_module.VoiceConfig(min_confidence_risky=1.01)})

    monkeypatch.setattr(listener_module.VoiceListener, "__init__", unsure_of_flips)
    session, said_wav = tmp_path / "session.wav", tmp_path / "said.wav"
    spoken_session(session, ["clean/take_off_slt.wav", "ood/hello_there_how_are_you_slt.wav",
                             "clean/flip_forward_slt.wav", "hitl/yes_slt.wav", "clean/land_slt.wav"])
    capsys.readouterr()
    code = main(["fly", "--voice", str(session), "--speak-to", str(said_wav), "--engine", "pocketsphinx", "--json"])
    run = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0, run["failure"]
    assert [(c["command"], c["result"]) for c in run["commands"]] == [
        ("takeoff", "ok"), ("pardon", "ok"), ("ask flip f", "ok"), ("yes", "ok"), ("flip f", "ok"), ("land", "ok")]
    said = [e for e in run["events"] if e["type"] == "said"]
    assert [e["detail"] for e in said] == ["taking off", "say again", "did you say flip forward? say yes",
                                           "flip forward", "landing"]
    starts = sound_starts(read_wav(said_wav))
    assert len(starts) == len(said)
    for start, event in zip(starts, said, strict=True):
        assert start >= event["t_s"] - 0.05


@pytest.mark.slow
def test_low_battery_hands_over_nobody_answers_it_lands_and_the_recording_shows_it(tmp_path, capsys):
    """Through the CLI: the battery reaches 15% in the air, the pilot says so, holds the rest of the script and waits;
    nobody answers within --handover-timeout: it lands. The recording replays with the same decisions and its
    report lists the hand-over."""
    folder = tmp_path / "run"
    code, run = fly(["--battery", "21", "--script", "takeoff; wait 40; up 50; land", "--handover-timeout", "3",
                     "--record", str(folder), "--speak-to", str(tmp_path / "said.wav")], capsys)
    assert code == 1 and "nobody took over in 3 s" in run["failure"]
    assert not any(c["command"] == "up 50" for c in run["commands"]) and not run["final"]["flying"]
    events = [(e["type"], e["detail"]) for e in run["events"]]
    assert ("said", "battery 15 percent") in events and ("said", "nobody answered, landing") in events
    capsys.readouterr()
    assert main(["replay", str(folder), "--report", str(tmp_path / "report.png")]) == 0
    out = capsys.readouterr().out
    assert "all identical" in out
    assert "hand-over at 36.0 s (battery low): nobody took over in 3.0 s: landing" in out


@pytest.mark.parametrize("muted", [False, True])
def test_a_muted_listener_hears_nothing(muted):
    """While the pilot speaks, the microphone's audio is replaced by silence: its own "land" is never a command."""
    from edgepilot.voice.listener import VoiceListener

    listener = VoiceListener(str(VOICE / "clean" / "land_slt.wav"), engine="pocketsphinx", realtime=False)
    listener.muted = lambda: muted
    heard: list[str] = []
    listener.start(lambda command, info: heard.append(command.text))
    listener.join(timeout=30)
    assert heard == ([] if muted else ["land"])


def test_the_keyboard_takes_over_too():
    pilot, _ = lost_target_pilot()
    pushed = []

    def person(t_s: float) -> None:
        if pilot.handover.waiting is not None and not pushed and t_s >= pilot.handover.waiting.since_t_s + 2.0:
            pushed.append(t_s)
            pilot.manual_velocity(Velocity(vx_cm_s=20.0))
        elif pushed and t_s >= pushed[0] + 1.0 and pilot.inbox.empty() and len(pushed) == 1:
            pushed.append(t_s)
            pilot.submit(Command("land", None, "keys"))

    original = pilot._tick
    pilot._tick = lambda t_s, now_s: (person(t_s), original(t_s, now_s))[1]
    result = pilot.run([Command("takeoff"), Command("follow", "me")])
    taken = [e.detail for e in result.events if e.type == "taken_over"]
    assert len(taken) == 1 and taken[0].startswith("keys after 2.0 s: manual control")


def test_a_hand_over_stops_a_move_under_way():
    """The camera stream is lost a metre into a 3 m flight forward: the drone stops there and hovers."""
    pilot, said = lost_target_pilot(timeout_s=5.0)
    at = []

    def fault(t_s: float) -> None:
        x = pilot.vehicle.telemetry().x_cm
        if not at and pilot._last_verb == "forward" and x >= 100:
            at.append(x)
            pilot.note_event(t_s, "video_missing", "no video for 2 s")

    original = pilot._tick
    pilot._tick = lambda t_s, now_s: (fault(t_s), original(t_s, now_s))[1]
    result = pilot.run([Command("takeoff"), Command("forward", 300), Command("land")])
    assert [c.command for c in result.commands][:3] == ["takeoff", "forward 300", "stop"]
    assert "camera lost" in said.phrases and "waiting for your command" in said.phrases
    assert at[0] <= result.final.x_cm < at[0] + 30  # stopped where it was, not 3 m on; nobody came: it landed there
    assert "nobody took over in 5 s" in result.failure and not result.final.flying
