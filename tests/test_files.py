"""The file layer: output checks, atomic writes, hashes, tables, audio, locks."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from fmlib import files
from fmlib.errors import InputError, MissingFileError


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --------------------------------------------------------------------------- checks
def test_check_output_accepts_new_file_and_missing_parents(tmp_path):
    out = tmp_path / "a" / "b" / "x.wav"
    assert files.check_output(out, kind="audio") == out
    assert not (tmp_path / "a").exists()  # checks create nothing


@pytest.mark.parametrize("name", ["x.mp3", "x", "x.WAV.txt"])
def test_check_output_refuses_other_audio_extensions(tmp_path, name):
    with pytest.raises(InputError, match="use .wav, .flac, .ogg"):
        files.check_output(tmp_path / name, kind="audio")


@pytest.mark.parametrize("name", ["x.WAV", "x.Flac", "x.ogg"])
def test_check_output_extension_is_case_insensitive(tmp_path, name):
    files.check_output(tmp_path / name, kind="audio")


def test_check_output_refuses_folder_device_fifo(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        files.check_output(tmp_path)
    with pytest.raises(InputError, match="is a device"):
        files.check_output("/dev/null")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="FIFO"):
        files.check_output(fifo)
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        files.check_output(f, kind="folder")


def test_check_output_refuses_long_name_and_file_as_parent(tmp_path):
    with pytest.raises(InputError, match="file name too long: 304 bytes"):
        files.check_output(tmp_path / ("a" * 300 + ".wav"))
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        files.check_output(f / "x.wav")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_check_output_refuses_unwritable_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(InputError, match="is not writable"):
            files.check_output(ro / "x.json")
        with pytest.raises(InputError, match="is not writable"):
            files.check_output(ro / "sub" / "x.json")
    finally:
        ro.chmod(0o700)


def test_check_input(tmp_path):
    with pytest.raises(MissingFileError, match="no such patch JSON"):
        files.check_input(tmp_path / "nope.json", what="patch JSON")
    with pytest.raises(InputError, match="is a folder; expected a patch JSON"):
        files.check_input(tmp_path, what="patch JSON")
    with pytest.raises(InputError, match="is a file; expected a folder"):
        f = tmp_path / "f"
        f.write_text("x")
        files.check_input(f, kind="folder")


def test_same_file_catches_dot_paths_symlinks_and_hard_links(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = tmp_path / "a.wav"
    a.write_bytes(b"x")
    os.link(a, tmp_path / "hard.wav")
    os.symlink(a, tmp_path / "soft.wav")
    assert files.same_file("a.wav", "./a.wav")
    assert files.same_file("a.wav", "sub/../a.wav")
    assert files.same_file("a.wav", "hard.wav")
    assert files.same_file("soft.wav", "a.wav")
    assert not files.same_file("a.wav", "b.wav")


def test_check_distinct(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.wav").write_bytes(b"x")
    with pytest.raises(InputError, match="--wav would overwrite the input audio"):
        files.check_distinct(
            {"-o": "x.json", "--wav": "./in.wav"}, {"input audio": "in.wav"}
        )
    with pytest.raises(InputError, match="named by both -o and --wav"):
        files.check_distinct({"-o": "p.json", "--wav": "p.json"})
    files.check_distinct({"-o": "p.json", "--wav": None}, {"input": "in.wav"})


# --------------------------------------------------------------------------- atomic
def test_atomic_writes_round_trip_and_leave_no_temporary(tmp_path):
    files.write_bytes(tmp_path / "b.bin", b"\x00\x01")
    files.write_text(tmp_path / "t.txt", "héllo\n")
    files.write_json(tmp_path / "d" / "j.json", {"b": 1, "a": [1.5]}, sort_keys=True)
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "t.txt").read_bytes() == "héllo\n".encode()
    assert (tmp_path / "d" / "j.json").read_text() == (
        '{\n  "a": [\n    1.5\n  ],\n  "b": 1\n}\n'
    )
    assert _listing(tmp_path) == ["b.bin", "d", "d/j.json", "t.txt"]


def test_atomic_write_has_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        files.write_text(tmp_path / "x.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o644


def test_failed_write_leaves_old_file_and_nothing_else(tmp_path):
    target = tmp_path / "keep.npy"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), files.atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer failed")
    assert target.read_bytes() == b"old"
    assert _listing(tmp_path) == ["keep.npy"]


def test_failed_write_removes_the_folders_it_created(tmp_path):
    with pytest.raises(RuntimeError), files.atomic_path(tmp_path / "a/b/x.npy"):
        raise RuntimeError("writer failed")
    assert _listing(tmp_path) == []


def test_atomic_path_for_writers_that_take_a_name(tmp_path):
    with files.atomic_path(tmp_path / "x.npy", suffix=".npy") as tmp:
        assert tmp.name.endswith(".tmp.npy") and files.is_temporary(tmp.name)
        np.save(tmp, np.arange(3), allow_pickle=False)
    assert np.load(tmp_path / "x.npy").tolist() == [0, 1, 2]
    assert _listing(tmp_path) == ["x.npy"]


def test_atomic_write_never_replaces_a_non_regular_file(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="FIFO"):
        files.write_text(fifo, "x")
    with pytest.raises(InputError, match="is a folder"):
        files.write_text(tmp_path, "x")
    assert _listing(tmp_path) == ["fifo"]


def test_os_error_becomes_one_line(tmp_path):
    with pytest.raises(InputError) as info:
        files.write_text(tmp_path / ("n" * 300), "x")
    msg = str(info.value)
    assert "\n" not in msg and "file name too long" in msg
    with pytest.raises(InputError, match=r"cannot read \(No such file"):
        files.file_sha256(tmp_path / "missing")


def test_is_temporary():
    assert files.is_temporary(".x.wav.0123abcd.tmp")
    assert files.is_temporary(".model.keras.0123abcd.tmp.keras")
    assert not files.is_temporary("x.wav")
    assert not files.is_temporary(".lock")


# --------------------------------------------------------------------------- hashing
def test_file_sha256_known_value(tmp_path):
    p = tmp_path / "abc"
    p.write_bytes(b"abc")
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert files.file_sha256(p) == expected == files.bytes_sha256(b"abc")
    big = tmp_path / "big"
    data = os.urandom(3 << 20)
    big.write_bytes(data)
    assert files.file_sha256(big) == hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- tables
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (11476.034743088941, "11,476"),
        (15640.799, "15,641"),
        (2498.55779, "2,499"),
        (141.678829, "141.7"),
        (65.6166058, "65.62"),
        (22.0, "22.00"),
        (-17.9789, "-17.98"),
        (0.60862, "0.6086"),
        (0.008784649618452139, "0.008785"),
        (0.001, "0.001000"),
        (1.6e-8, "1.600e-08"),
        (0.0, "0"),
        (-0.0, "0"),
        (5000, "5,000"),
        (np.int64(42), "42"),
        (np.float32(0.5), "0.5000"),
        (float("nan"), ""),
        (float("inf"), "inf"),
        ("FFT", "FFT"),
        (True, "True"),
        (None, ""),
    ],
)
def test_format_number(value, text):
    assert files.format_number(value) == text


def test_write_table_csv_ten_digits_markdown_one_format(tmp_path):
    df = pd.DataFrame(
        {"resynthesis": [11476.034743088941, 0.0087846], "n": [5000, 7]},
        index=pd.Index(["FFT", "Log Mel"], name="metric"),
    )
    csv, md = files.write_table(df, tmp_path, "t", title="Table", index=True)
    assert csv.read_text().splitlines() == [
        "metric,resynthesis,n",
        "FFT,11476.03474,5000",
        "Log Mel,0.0087846,7",
    ]
    back = pd.read_csv(csv, index_col="metric")
    np.testing.assert_allclose(back["resynthesis"], df["resynthesis"], rtol=5e-10)
    lines = md.read_text().splitlines()
    assert lines[0] == "### Table" and lines[1] == ""
    assert [c.strip() for c in lines[2].strip("|").split("|")] == [
        "metric",
        "resynthesis",
        "n",
    ]
    assert [c.strip() for c in lines[4].strip("|").split("|")] == [
        "FFT",
        "11,476",
        "5,000",
    ]
    assert [c.strip() for c in lines[5].strip("|").split("|")] == [
        "Log Mel",
        "0.008785",
        "7",
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2.0, "2.0"),
        (0.00016075620714515017, "0.0001607562071"),
        (-3.5, "-3.5"),
        (1e-12, "1e-12"),
        (1e20, "1e+20"),
        (123456789012.5, "123456789000.0"),
        (float("inf"), "inf"),
    ],
)
def test_csv_number(value, text):
    assert files.csv_number(value) == text
    assert float(text) == pytest.approx(value, rel=5e-10)


def test_write_table_is_byte_stable_under_last_digit_noise(tmp_path, rng):
    """The same table written twice gives the same bytes, and so does a table whose
    floats differ only in their last bits (FFT/BLAS kernels, thread counts)."""
    values = rng.standard_normal(200) * 10.0 ** rng.integers(-6, 6, 200)
    noisy = values * (1 + rng.choice([-1, 1], 200) * 4e-16)  # a couple of ulps
    assert not np.array_equal(values, noisy)
    df = pd.DataFrame({"x": values, "k": np.arange(200)})
    digests = set()
    for i, v in enumerate((values, values, noisy)):
        csv, md = files.write_table(df.assign(x=v), tmp_path / str(i), "t")
        digests.add((files.file_sha256(csv), files.file_sha256(md)))
    assert len(digests) == 1
    # while full precision (pandas' default) is not stable
    assert df.to_csv() != df.assign(x=noisy).to_csv()


def test_committed_tables_share_one_number_format():
    """Every number in a committed Markdown table is what format_number writes for
    the same cell of its CSV."""
    from fmlib.paths import TABLES_DIR

    checked = 0
    for md in sorted(TABLES_DIR.glob("*.md")):
        csv = md.with_suffix(".csv")
        df = pd.read_csv(csv, keep_default_na=False, na_values=[""])
        rows = [
            line
            for line in md.read_text().splitlines()
            if line.startswith("|") and not set(line) <= set("|-: ")
        ][1:]
        assert len(rows) == len(df), md.name
        records = df.astype(object).itertuples(index=False)  # no upcasting
        for line, rec in zip(rows, records, strict=True):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            assert len(cells) == len(rec), md.name
            for cell, value in zip(cells, rec, strict=True):
                assert cell == files.format_number(value), (md.name, cell, value)
                checked += 1
    assert checked > 100


# --------------------------------------------------------------------------- audio
@pytest.mark.parametrize(
    ("ext", "fmt"), [(".wav", "WAV"), (".flac", "FLAC"), (".ogg", "OGG")]
)
def test_write_audio_format_follows_extension(tmp_path, ext, fmt):
    t = np.arange(16000) / 16000
    audio = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = files.write_audio(tmp_path / f"x{ext.upper()}", audio, 16000)
    info = sf.info(out)
    assert info.format == fmt and info.samplerate == 16000 and info.frames == 16000
    back, _ = sf.read(out, dtype="float32")
    tol = 0.05 if fmt == "OGG" else 1 / 32767
    assert np.max(np.abs(back - audio)) <= tol


def test_write_audio_wav_keeps_peaks_above_one_flac_refuses(tmp_path):
    audio = np.array([0.0, 1.5, -1.2], dtype=np.float32)
    files.write_audio(tmp_path / "x.wav", audio, 16000)
    assert sf.info(tmp_path / "x.wav").subtype == "FLOAT"
    assert sf.read(tmp_path / "x.wav", dtype="float32")[0].tolist() == audio.tolist()
    with pytest.raises(InputError, match="peaks at 1.500"):
        files.write_audio(tmp_path / "x.flac", audio, 16000)
    with pytest.raises(InputError, match="not a supported audio extension"):
        files.write_audio(tmp_path / "x.mp3", audio, 16000)
    assert _listing(tmp_path) == ["x.wav"]


# ------------------------------------------------------------------ space, lock
def test_free_bytes_and_format_bytes(tmp_path):
    assert files.free_bytes(tmp_path / "not" / "yet") > 0
    assert files.format_bytes(512) == "512 B"
    assert files.format_bytes(6 * 1024**3 + 1024**3 // 10) == "6.1 GiB"


def test_folder_lock_excludes_another_process(tmp_path):
    code = (
        "import sys\n"
        "from fmlib import files\n"
        "try:\n"
        "    with files.folder_lock(sys.argv[1], command='generate'):\n"
        "        print('got it')\n"
        "except files.InputError as e:\n"
        "    print(e)\n"
    )
    with files.folder_lock(tmp_path, command="generate"):
        r = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True
        )
        assert "another generate run is writing this folder" in r.stdout
    r = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True
    )
    assert r.stdout.strip() == "got it"


def test_write_json_rejects_non_json(tmp_path):
    with pytest.raises(TypeError):
        files.write_json(tmp_path / "x.json", {"a": object()})
    assert _listing(tmp_path) == []
    assert json.loads(files.write_json(tmp_path / "y.json", [1]).read_text()) == [1]


def test_folder_lock_is_reentrant_within_a_process(tmp_path):
    first = files.folder_lock(tmp_path, command="evaluate")  # e.g. kept by a traceback
    with files.folder_lock(tmp_path, command="evaluate"):
        pass
    first.release()
    assert files._HELD == {}


def test_move_into_place(tmp_path):
    part = tmp_path / "a.part"
    part.write_bytes(b"done")
    files.move_into_place(part, tmp_path / "a")
    assert (tmp_path / "a").read_bytes() == b"done" and not part.exists()
    src = tmp_path / "staging"
    src.mkdir()
    with pytest.raises(InputError, match="exists"):
        files.move_into_place(src, tmp_path / "a")
    files.move_into_place(src, tmp_path / "dest")
    assert (tmp_path / "dest").is_dir()
