"""NSynth loader (missing keys) and downloader (checksum, resume, offline, safety)."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import socket
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fmlib import cli
from fmlib.datasets.nsynth import (
    COLUMNS,
    download_nsynth_test,
    load_nsynth,
    parse_note_str,
    read_note,
)
from fmlib.errors import InputError, MissingFileError

NOTES = {
    # full entry, as in the official examples.json
    "guitar_acoustic_010-060-100": {
        "note_str": "guitar_acoustic_010-060-100",
        "instrument_family_str": "guitar",
        "instrument_source_str": "acoustic",
        "pitch": 60,
        "velocity": 100,
        "qualities_str": ["bright"],
    },
    # optional keys missing: recovered from the note_str key
    "synth_lead_synthetic_000-048-127": {"sample_rate": 16000},
}


def _write_set(folder: Path, *, n_samples: int = 64_000) -> Path:
    (folder / "audio").mkdir(parents=True)
    (folder / "examples.json").write_text(json.dumps(NOTES))
    for i, name in enumerate(NOTES):
        x = 0.5 * np.sin(2 * np.pi * 220 * (i + 1) * np.arange(n_samples) / 16_000)
        sf.write(folder / "audio" / f"{name}.wav", x, 16_000, subtype="PCM_16")
    return folder


def test_parse_note_str():
    assert parse_note_str("synth_lead_synthetic_000-048-127") == {
        "instrument_family_str": "synth_lead",
        "instrument_source_str": "synthetic",
        "pitch": 48,
        "velocity": 127,
    }
    assert parse_note_str("whatever")["pitch"] is None


def test_loader_tolerates_missing_keys(tmp_path):
    table = load_nsynth(_write_set(tmp_path / "set"))
    assert list(table.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert list(table.note_str) == sorted(NOTES)
    lead = table.set_index("note_str").loc["synth_lead_synthetic_000-048-127"]
    assert (lead.instrument_family_str, lead.instrument_source_str) == (
        "synth_lead",
        "synthetic",
    )
    assert (lead.pitch, lead.velocity) == (48, 127)
    assert table.pitch.dtype == np.int64
    x = read_note(table.path[0])
    assert x.dtype == np.float32 and x.shape == (64_000,)
    # 16-bit PCM read back as float: within one LSB of the written sine
    ref = 0.5 * np.sin(2 * np.pi * 220 * np.arange(64_000) / 16_000)
    assert np.max(np.abs(x - ref)) < 2 / 32768


def test_loader_errors(tmp_path):
    with pytest.raises(MissingFileError):
        load_nsynth(tmp_path / "nope")
    tmp_path.joinpath("bad").mkdir()
    with pytest.raises(MissingFileError, match="examples.json"):
        load_nsynth(tmp_path / "bad")
    (tmp_path / "bad" / "examples.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="object"):
        load_nsynth(tmp_path / "bad")
    (tmp_path / "bad" / "examples.json").write_text('{"oddname": {}}')
    with pytest.raises(InputError, match="pitch"):
        load_nsynth(tmp_path / "bad")
    wav = tmp_path / "x.wav"
    sf.write(wav, np.zeros(100), 22_050)
    with pytest.raises(InputError, match="16000"):
        read_note(wav)
    wav.write_bytes(b"not audio")
    with pytest.raises(InputError):
        read_note(wav)


# --------------------------------------------------------------------------- download


def _archive(tmp_path: Path) -> tuple[Path, str]:
    src = _write_set(tmp_path / "src" / "nsynth-test", n_samples=200)
    path = tmp_path / "nsynth-test.jsonwav.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(src, arcname="nsynth-test")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _download(tmp_path, url, **kw):
    return download_nsynth_test(
        url=url,
        dest=tmp_path / "out" / "nsynth-test",
        downloads_dir=tmp_path / "downloads",
        expected_notes=2,
        progress=False,
        timeout_s=5,
        **kw,
    )


def test_download_file_url_and_checksum(tmp_path):
    archive, digest = _archive(tmp_path)
    dest = _download(tmp_path, archive.as_uri(), sha256=digest)
    assert len(load_nsynth(dest)) == 2
    info = json.loads((dest / "download.json").read_text())
    assert info["sha256"] == digest and info["sha256_pinned"] and info["n_notes"] == 2
    assert not list((tmp_path / "downloads").glob("*.part"))
    # a complete folder is returned at once
    assert _download(tmp_path, "http://127.0.0.1:9/unused", sha256=digest) == dest


def test_download_checksum_mismatch_deletes(tmp_path):
    archive, _ = _archive(tmp_path)
    with pytest.raises(InputError, match="does not match"):
        _download(tmp_path, archive.as_uri(), sha256="0" * 64)
    assert not list((tmp_path / "downloads").iterdir())
    assert not (tmp_path / "out" / "nsynth-test").exists()


def test_download_wrong_note_count(tmp_path):
    archive, _ = _archive(tmp_path)
    with pytest.raises(InputError, match="2 notes"):
        download_nsynth_test(
            url=archive.as_uri(),
            dest=tmp_path / "out",
            downloads_dir=tmp_path / "dl",
            progress=False,
        )  # default expects the 4,096 notes of the real test split


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_offline_message(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/nsynth-test.jsonwav.tar.gz"
    with pytest.raises(InputError, match="connect to the network and rerun"):
        _download(tmp_path, url)


def test_download_resumes_with_http_range(tmp_path):
    archive, digest = _archive(tmp_path)
    data = archive.read_bytes()
    ranges = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            start = 0
            rng = self.headers.get("Range")
            if rng:
                ranges.append(rng)
                start = int(rng.split("=")[1].split("-")[0])
                self.send_response(206)
                self.send_header(
                    "Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}"
                )
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            self.wfile.write(data[start:])

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        (tmp_path / "downloads").mkdir()
        half = len(data) // 2
        part = tmp_path / "downloads" / "nsynth-test.jsonwav.tar.gz.part"
        part.write_bytes(data[:half])
        url = f"http://127.0.0.1:{server.server_port}/nsynth-test.jsonwav.tar.gz"
        dest = _download(tmp_path, url, sha256=digest)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert ranges == [f"bytes={half}-"]
    assert len(load_nsynth(dest)) == 2


def test_download_rejects_path_traversal(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        payload = b"x"
        info = tarfile.TarInfo("../escaped.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(InputError, match="escapes"):
        _download(tmp_path, evil.as_uri())
    assert not (tmp_path / "out" / "escaped.txt").exists()
    assert not (tmp_path / "escaped.txt").exists()


def test_cli_one_line_error(tmp_path, capsys):
    code = cli.main(
        ["download-nsynth", "--sha256", "xyz", "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "sha256" in err
