"""``edgepilot models fetch``: download with a checksum into a cache, install only what is complete, one clear line
for every failure; and ``doctor`` says which speech engine will be used and why. No network here: the downloads come
from a local HTTP server and file:// URLs, serving an archive laid out like the Vosk model (its files are stand-ins:
the checks are on the archive's layout and checksum, not on the model)."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import zipfile
from pathlib import Path

import pytest

from edgepilot.pilot.app import doctor_cmd
from edgepilot.pilot.app.cli import main
from edgepilot.pilot.app.models_cmd import MODELS

FOLDER = MODELS["vosk-en"].folder


def fake_vosk_zip(path: Path, complete: bool = True) -> str:
    files = MODELS["vosk-en"].must_contain if complete else MODELS["vosk-en"].must_contain[:1]
    with zipfile.ZipFile(path, "w") as archive:
        for name in files:
            archive.writestr(f"{FOLDER}/{name}", b"x" * 1000)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def server(tmp_path):
    """A local HTTP server for tmp_path/www."""
    www = tmp_path / "www"
    www.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(www), **kwargs)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def fetch(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["models", "fetch", "vosk-en", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_fetch_over_http_checks_the_checksum_and_installs(server, tmp_path, capsys):
    www, url = server
    digest = fake_vosk_zip(www / "model.zip")
    dest = tmp_path / "models"
    code, out, err = fetch(capsys, "--url", f"{url}/model.zip", "--sha256", digest, "--dest", str(dest), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result == {"name": "vosk-en", "path": str(dest / FOLDER), "sha256": digest, "status": "installed"}
    assert (dest / FOLDER / "am" / "final.mdl").is_file()
    assert list((dest / ".downloads").iterdir()) == []  # the download cache is emptied
    code, out, _ = fetch(capsys, "--url", f"{url}/model.zip", "--sha256", digest, "--dest", str(dest))
    assert code == 0 and "already installed" in out


def test_a_download_that_is_not_the_published_file_installs_nothing(server, tmp_path, capsys):
    www, url = server
    fake_vosk_zip(www / "model.zip")
    dest = tmp_path / "models"
    code, _, err = fetch(capsys, "--url", f"{url}/model.zip", "--dest", str(dest))  # the pinned sha256
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert f"expected {MODELS['vosk-en'].sha256}" in err and "nothing was installed" in err
    assert not (dest / FOLDER).exists() and list((dest / ".downloads").iterdir()) == []


def test_incomplete_archive_missing_file_and_bad_checksum_are_one_line(server, tmp_path, capsys):
    www, url = server
    digest = fake_vosk_zip(www / "part.zip", complete=False)
    dest = tmp_path / "models"
    code, _, err = fetch(capsys, "--url", f"{url}/part.zip", "--sha256", digest, "--dest", str(dest))
    assert code == 1 and "the archive lacks graph/HCLr.fst" in err and not (dest / FOLDER).exists()
    code, _, err = fetch(capsys, "--url", (tmp_path / "nothing.zip").as_uri(), "--dest", str(dest))
    assert code == 1 and err.startswith("edgepilot models: cannot download file://") and "--url" in err
    code, _, err = fetch(capsys, "--url", f"{url}/missing.zip", "--dest", str(dest))
    assert code == 1 and "HTTP 404" in err
    code, _, err = fetch(capsys, "--sha256", "abc", "--dest", str(dest))
    assert code == 2 and "64 hex digits" in err


def test_file_url_and_then_doctor_says_vosk_and_why(tmp_path, capsys, monkeypatch):
    zipped = tmp_path / "model.zip"
    digest = fake_vosk_zip(zipped)
    home = tmp_path / "home"
    monkeypatch.delenv("EDGEPILOT_VOSK_MODEL", raising=False)
    monkeypatch.setattr("edgepilot.voice.engines.MODEL_HOME", home)
    before = doctor_cmd.check_engine()
    assert before.detail.startswith(("whisper", "pocketsphinx, because no English Vosk model"))
    code, out, err = fetch(capsys, "--url", zipped.as_uri(), "--sha256", digest)  # default dest: the models home
    assert code == 0, err
    assert out.strip() == f"vosk-en: installed at {home / FOLDER}"
    after = doctor_cmd.check_engine()
    assert after.detail == f"vosk, because its model is at {home / FOLDER}"
