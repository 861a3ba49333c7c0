"""Tests of ``python -m fmlib render`` (fmlib.cli.render_cli through fmlib.cli).

Every bad input must end with exit status 2, one stderr line starting ``error:``, no
traceback and no output file. The whole matrix runs in-process through
``fmlib.cli.main`` (the same code path, fast); a representative few run as real
subprocesses, which also proves the exit status and the absence of a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from fmlib.cli import main
from fmlib.paths import PROJECT_ROOT
from fmlib.synth.engine import render

EXAMPLE = PROJECT_ROOT / "examples" / "patch.json"
VALID = json.loads(EXAMPLE.read_text())


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "fmlib", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=300,
    )


def call_main(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit status, stdout, stderr)."""
    try:
        status = main(list(args))
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status: int, err: str) -> None:
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error:"), err
    assert "Traceback" not in err


def write(tmp_path, name: str, content) -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content))
    return str(path)


def variant(**changes) -> dict:
    d = json.loads(json.dumps(VALID))
    for dotted, value in changes.items():
        keys = dotted.split("__")
        target = d
        for k in keys[:-1]:
            target = target[int(k)] if k.isdigit() else target[k]
        last = int(keys[-1]) if keys[-1].isdigit() else keys[-1]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value
    return d


BAD_FILES = {
    "missing_key": (variant(carrier_hz=KeyError), "carrier_hz"),
    "missing_envelope_key": (variant(envelope__release_s=KeyError), "release_s"),
    "wrong_type": (variant(carrier_hz="440 Hz"), "carrier_hz"),
    "wrong_type_modulators": (variant(modulators={"ratio": 1}), "modulators"),
    "nan_literal": (json.dumps(VALID).replace("440.0", "NaN"), "carrier_hz"),
    "inf_literal": (
        json.dumps(VALID).replace('"index": 2.0', '"index": Infinity'),
        "index",
    ),
    "carrier_zero": (variant(carrier_hz=0), "carrier_hz"),
    "carrier_negative": (variant(carrier_hz=-100.0), "carrier_hz"),
    "ratio_zero": (variant(modulators__2__ratio=0.0), "ratio"),
    "ratio_negative": (variant(modulators__2__ratio=-3.0), "ratio"),
    "index_negative": (variant(modulators__0__index=-1.5), "index"),
    "attack_negative": (variant(envelope__attack_s=-0.01), "attack_s"),
    "decay_negative": (variant(envelope__decay_s=-0.2), "decay_s"),
    "release_negative": (variant(envelope__release_s=-0.3), "release_s"),
    "sustain_below": (variant(envelope__sustain=-0.5), "sustain"),
    "sustain_above": (variant(envelope__sustain=1.5), "sustain"),
    "unknown_algorithm": (variant(algorithm="dx7_99"), "algorithm"),
    "four_modulators": (variant(modulators=VALID["modulators"][:4]), "modulators"),
    "six_modulators": (
        variant(modulators=VALID["modulators"] + [{"ratio": 1, "index": 1}]),
        "modulators",
    ),
    "invalid_json": ('{"carrier_hz": 440.0', "invalid JSON"),
    "empty_file": ("", "empty"),
    "not_utf8": (b"\xff\xfe\xfa\xfb", "cannot read"),
    "json_list": ("[1, 2, 3]", "expected an object"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_patch_file(tmp_path, capsys, case):
    content, field = BAD_FILES[case]
    patch = write(tmp_path, "patch.json", content)
    out = tmp_path / "out.wav"
    status, _, err = call_main(capsys, "render", patch, "-o", str(out))
    assert_one_line_error(status, err)
    assert field in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["patch.json"]


def test_bad_patch_leaves_an_existing_output_untouched(tmp_path, capsys):
    out = tmp_path / "out.wav"
    out.write_bytes(b"previous")
    patch = write(tmp_path, "patch.json", variant(carrier_hz=-1.0))
    status, _, err = call_main(capsys, "render", patch, "-o", str(out))
    assert_one_line_error(status, err)
    assert out.read_bytes() == b"previous"


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (
            ["render", "{tmp}/nope.json", "-o", "{tmp}/out.wav"],
            "no such patch JSON file",
        ),
        (["render", "{ex}", "-o", "{ex}/out.wav"], "not a folder"),
        (["render", "{ex}", "-o", "{tmp}"], "is a folder"),
        (["render", "{ex}", "-o", "{tmp}/out.wav", "--duration", "0"], "duration_s"),
        (["render", "{ex}", "-o", "{tmp}/out.wav", "--duration", "-2"], "duration_s"),
        (["render", "{ex}", "-o", "{tmp}/out.wav", "--duration", "nan"], "duration_s"),
        (["render", "{ex}", "-o", "{tmp}/out.wav", "--duration", "1e9"], "duration_s"),
        (["render", "{ex}", "-o", "{tmp}/out.wav", "--note-off", "-1"], "note_off_s"),
        (
            ["render", "{ex}", "-o", "{tmp}/out.wav", "--duration", "abc"],
            "invalid float",
        ),
        (["render", "{ex}"], "required"),
        (["render"], "required"),
    ],
)
def test_bad_arguments(tmp_path, capsys, args, text):
    args = [a.format(tmp=tmp_path, ex=EXAMPLE) for a in args]
    status, _, err = call_main(capsys, *args)
    assert_one_line_error(status, err)
    assert text in err
    assert list(tmp_path.iterdir()) == []


def test_render_in_process_writes_the_expected_wav(tmp_path, capsys):
    out = tmp_path / "note.wav"
    status, stdout, err = call_main(
        capsys, "render", str(EXAMPLE), "-o", str(out), "--duration", "1.5",
        "--note-off", "1.0",
    )  # fmt: skip
    assert status == 0, err
    assert str(out) in stdout
    audio, sr = sf.read(out, dtype="float64")
    assert sr == 16_000 and audio.shape == (24_000,)
    want = render(VALID, duration_s=1.5, note_off_s=1.0)
    assert np.max(np.abs(audio - want)) <= 1 / 32768 + 1e-9  # 16-bit quantisation
    assert [p.name for p in tmp_path.iterdir()] == ["note.wav"]  # no temp file left


# ------------------------------------------------------------------ real subprocesses


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("render", "generate", "train", "predict", "evaluate", "reproduce"):
        assert command in result.stdout


def test_render_example_patch(tmp_path):
    out = tmp_path / "example.wav"
    result = run_cli("render", str(EXAMPLE), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    audio, sr = sf.read(out, dtype="float32")
    assert sr == 16_000 and audio.shape == (64_000,)
    assert np.max(np.abs(audio - render(VALID))) <= 1 / 32768 + 1e-6


@pytest.mark.parametrize("case", ["nan_literal", "empty_file"])
def test_bad_patch_file_subprocess(tmp_path, case):
    content, field = BAD_FILES[case]
    patch = write(tmp_path, "patch.json", content)
    out = tmp_path / "out.wav"
    result = run_cli("render", patch, "-o", str(out))
    assert_one_line_error(result.returncode, result.stderr)
    assert field in result.stderr
    assert not out.exists()


def test_missing_input_and_new_output_folder_subprocess(tmp_path):
    result = run_cli(
        "render", str(tmp_path / "nope.json"), "-o", str(tmp_path / "o.wav")
    )
    assert_one_line_error(result.returncode, result.stderr)
    assert list(tmp_path.iterdir()) == []
    # policy (docs/FILES.md): missing parent folders of an output are created
    result = run_cli("render", str(EXAMPLE), "-o", str(tmp_path / "new" / "o.wav"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "new" / "o.wav").is_file()


BRIGHT = {
    "algorithm": "dx7_18",
    "carrier_hz": 370.57,
    "modulators": [
        {"ratio": 6.51, "index": 6.62},
        {"ratio": 0.2277, "index": 3.27},
        {"ratio": 6.46, "index": 4.40},
        {"ratio": 0.457, "index": 0.22},
        {"ratio": 0.727, "index": 6.03},
    ],
    "envelope": {
        "attack_s": 0.271,
        "decay_s": 0.211,
        "sustain": 0.73,
        "release_s": 0.28,
    },
}


def test_note_peaking_above_one_is_written_unclipped(tmp_path, capsys):
    """The anti-aliasing low-pass can lift a bright note's peak above 1.0; the WAV
    then holds float samples rather than clipped ones."""
    want = render(BRIGHT, duration_s=1.0, note_off_s=0.8)
    assert np.abs(want).max() > 1.1  # the premise of this test
    out = tmp_path / "bright.wav"
    patch = write(tmp_path, "bright.json", BRIGHT)
    status, _, err = call_main(
        capsys, "render", patch, "-o", str(out), "--duration", "1", "--note-off", "0.8"
    )
    assert status == 0, err
    audio, _ = sf.read(out, dtype="float32")
    assert np.array_equal(audio, want)


def _imported_modules(*args: str, cwd) -> set[str]:
    """Top-level names of every module ``python -X importtime -m fmlib ARGS``
    imports (read from the import-time report on stderr)."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "fmlib", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":  # the report's header line
                names.add(name.split(".")[0])
    assert "fmlib" in names  # the report was read
    return names


def test_render_imports_neither_tensorflow_librosa_nor_pandas(tmp_path):
    names = _imported_modules(
        "render", str(EXAMPLE), "-o", str(tmp_path / "x.wav"), cwd=PROJECT_ROOT
    )
    assert (tmp_path / "x.wav").is_file()
    assert not names & {"tensorflow", "keras", "librosa", "pandas", "matplotlib"}


def test_generate_help_imports_no_keras(tmp_path):
    """``generate`` (and the dataset workers it spawns) never load Keras."""
    names = _imported_modules("generate", "--help", cwd=tmp_path)
    assert "fmlib" in names and not names & {"tensorflow", "keras"}
