"""Every command against bad input: one table, one set of guarantees per case.

Each case runs ``python -m fmlib ...`` (in-process through :func:`fmlib.cli.main`;
a representative subset also as a real subprocess) inside a fresh sandbox folder and
asserts:

- exit status 2;
- exactly one line on stderr, starting ``error:``, holding the expected text;
- no traceback;
- every input byte-identical afterwards (sandbox, shared dataset, model and
  NSynth-layout folders, and ``/dev/full`` / ``/dev/null`` still devices);
- nothing left behind (the listing of every folder is the same before and after).

The "valid" model folder is a fake one (a complete ``model.json`` and a zip that is
not a Keras model): every bad case must be refused before the model is loaded, so a
check made after loading would show up as the wrong message.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fmlib.cli import main
from fmlib.paths import PROJECT_ROOT

EXAMPLE = PROJECT_ROOT / "examples" / "patch.json"
LONG = "a" * 300


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Read-only inputs shared by every case: a dataset, a fake model, an
    NSynth-layout folder."""
    from fmlib.datasets.dataset import generate_dataset
    from fmlib.datasets.sampler import sample_vectors
    from fmlib.estimate.model import TargetScaler
    from fmlib.synth.engine import render
    from fmlib.synth.params import TARGET_NAMES

    root = tmp_path_factory.mktemp("shared")
    ds = generate_dataset(root / "ds", n=6, seed=1, workers=1, progress=False)

    model = root / "model"
    model.mkdir()
    scaler = TargetScaler().fit(sample_vectors(50, seed=0))
    meta = {"complete": True, "scaler": scaler.to_dict(), "targets": TARGET_NAMES}
    (model / "model.json").write_text(json.dumps(meta))
    with zipfile.ZipFile(model / "model.keras", "w") as z:
        z.writestr("config.json", "{}")

    unfinished = root / "unfinished"
    unfinished.mkdir()
    (unfinished / "model.json").write_text(json.dumps({**meta, "complete": False}))
    (unfinished / "model.keras").write_bytes((model / "model.keras").read_bytes())

    junk = root / "junkmodel"
    junk.mkdir()
    (junk / "model.json").write_text(json.dumps(meta))
    (junk / "model.keras").write_bytes(b"this is not a zip archive")

    nsynth = root / "nsynth"
    (nsynth / "audio").mkdir(parents=True)
    notes = {}
    for name, pitch in (
        ("guitar_acoustic_001-060-100", 60),
        ("flute_synthetic_002-072-050", 72),
    ):
        notes[name] = {"pitch": pitch, "velocity": 100}
        sf.write(nsynth / "audio" / f"{name}.wav", render(EXAMPLE_PATCH()), 16_000)
    (nsynth / "examples.json").write_text(json.dumps(notes))
    return {"DS": ds, "M": model, "UNF": unfinished, "JUNK": junk, "NS": nsynth}


def EXAMPLE_PATCH() -> dict:  # noqa: N802 (a constant-like factory)
    return json.loads(EXAMPLE.read_text())


def _sine(seconds: float, rate: int = 16_000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return 0.5 * np.sin(2 * np.pi * 330.0 * t)


def make_sandbox(folder: Path) -> None:
    """The user's files every case starts from."""
    patch = EXAMPLE_PATCH()
    (folder / "p.json").write_text(json.dumps(patch))
    os.link(folder / "p.json", folder / "hl.json")
    typo = json.loads(json.dumps(patch))
    typo["envelope"]["atack_s"] = typo["envelope"].pop("attack_s")
    (folder / "typo.json").write_text(json.dumps(typo))
    (folder / "extra.json").write_text(json.dumps({**patch, "carrier": 1.0}))
    (folder / "broken.json").write_text('{"carrier_hz": 440')
    (folder / "empty.json").write_text("")
    sf.write(folder / "in.wav", _sine(1.0), 16_000)
    os.symlink("in.wav", folder / "sl.wav")
    sf.write(folder / "silent.wav", np.zeros(16_000), 16_000)
    (folder / "notaudio.wav").write_text("this is not audio\n")
    (folder / "zero.wav").write_bytes(b"")
    (folder / "sub").mkdir()
    (folder / "busy").mkdir()
    (folder / "busy" / "mine.txt").write_text("the user's notes")
    os.mkfifo(folder / "fifo")


# --------------------------------------------------------------------------- snapshot
def snapshot(*roots: Path) -> dict[str, str]:
    """path -> kind and content hash of everything under ``roots`` (no following of
    links), plus the two device nodes the cases aim at."""
    out = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                st = os.lstat(p)
                if stat.S_ISREG(st.st_mode):
                    kind = "file " + hashlib.sha256(p.read_bytes()).hexdigest()
                elif stat.S_ISLNK(st.st_mode):
                    kind = "link " + os.readlink(p)
                elif stat.S_ISDIR(st.st_mode):
                    kind = "dir"
                else:
                    kind = f"special {stat.S_IFMT(st.st_mode)}"
                out[str(p)] = kind
    for dev in ("/dev/full", "/dev/null"):
        out[dev] = f"chr={stat.S_ISCHR(os.stat(dev).st_mode)}"
    return out


# --------------------------------------------------------------------------- cases
#: (command line, text the one error line must contain). Words in capitals name the
#: shared folders; everything else is relative to the sandbox.
CASES: list[tuple[str, str]] = [
    # ---- render
    ("render p.json -o p.json", "would overwrite the input patch"),
    ("render p.json -o ./p.json", "would overwrite the input patch"),
    ("render hl.json -o p.json", "would overwrite the input patch"),
    ("render p.json -o /dev/full", "is a device"),
    ("render p.json -o /dev/null", "is a device"),
    ("render p.json -o fifo", "FIFO"),
    ("render p.json -o sub", "is a folder"),
    ("render p.json -o a.mp3", "'.mp3' is not a valid output extension"),
    ("render p.json -o noext", "no extension is not a valid output extension"),
    (f"render p.json -o {LONG}.wav", "file name too long: 304 bytes"),
    ("render p.json -o in.wav/x.wav", "is a file, not a folder"),
    ("render p.json -o /proc/x.wav", "cannot write (/proc"),
    ("predict M in.wav -o /proc/fmlib/x.json", "cannot write (/proc"),
    ("render missing.json -o x.wav", "no such patch JSON file"),
    ("render sub -o x.wav", "is a folder; expected a patch JSON file"),
    ("render /dev/full -o x.wav", "is a device; expected a patch JSON file"),
    ("render typo.json -o x.wav", "did you mean 'attack_s'"),
    ("render extra.json -o x.wav", "carrier: unknown key; did you mean 'carrier_hz'"),
    ("render broken.json -o x.wav", "invalid JSON"),
    ("render empty.json -o x.wav", "empty"),
    ("render p.json -o x.wav --duration 0.0001", "valid: 0.01 to 60 s"),
    ("render p.json -o x.wav --duration 0", "--duration"),
    ("render p.json -o x.wav --duration nan", "--duration"),
    ("render p.json -o x.wav --duration 1e9", "--duration"),
    ("render p.json -o x.wav --note-off -1", "--note-off"),
    ("render p.json -o x.wav --duration abc", "invalid float value"),
    ("render p.json", "required: -o/--out"),
    ("render p.json -o ", "the output path is empty"),
    # ---- predict
    ("predict M in.wav -o x.json --wav in.wav", "would overwrite the input audio"),
    ("predict M in.wav -o x.json --wav sl.wav", "would overwrite the input audio"),
    ("predict M in.wav -o p.json --wav p.json", "named by both -o and --wav"),
    ("predict M in.wav -o M/model.json", "would overwrite the model's model.json"),
    ("predict M sub -o x.json", "is a folder; expected an audio file"),
    ("predict M missing.wav -o x.json", "no such audio file"),
    ("predict M notaudio.wav -o x.json", "not a readable audio file"),
    ("predict M zero.wav -o x.json", "not a readable audio file"),
    ("predict M silent.wav -o x.json", "silent"),
    ("predict JUNK in.wav -o x.json", "not a Keras model file"),
    ("predict UNF in.wav -o x.json", "training has not finished"),
    ("predict nomodel in.wav -o x.json", "no such model folder"),
    ("predict DS in.wav -o x.json", "not a model folder"),
    ("predict p.json in.wav -o x.json", "is a file; expected a model folder"),
    ("predict M in.wav -o sub", "is a folder"),
    ("predict M in.wav -o x.wav", "'.wav' is not a valid output extension; use .json"),
    ("predict M in.wav -o x.json --wav x.mp3", "'.mp3' is not a valid output"),
    ("predict M in.wav -o /dev/full", "is a device"),
    (f"predict M in.wav -o {LONG}.json", "file name too long"),
    ("predict M in.wav -o in.wav/x.json", "is a file, not a folder"),
    ("predict M in.wav", "required: -o/--out"),
    # ---- generate
    ("generate --n 99999999999 --out d", "valid: 1 to 100,000,000"),
    ("generate --n 0 --out d", "n: 0 is not valid"),
    ("generate --n -5 --out d", "n: -5 is not valid"),
    ("generate --n 100000000 --out d", "of disk"),
    ("generate --n 4 --seed -1 --out d", "seed: -1 is not valid"),
    ("generate --n 4 --workers 0 --out d", "workers: 0 is not valid"),
    ("generate --n 4 --workers 100000 --out d", "valid: 1 to 256"),
    ("generate --n 4 --shard-size 0 --out d", "shard_size: 0 is not valid"),
    ("generate --n 4 --wav 10 --out d", "more than the 4 notes"),
    ("generate --n 4 --algorithm dx7_99 --out d", "dx7_99"),
    (
        "generate --n 4 --prior jazz --out d",
        "unknown prior 'jazz'; valid: paper, musical",
    ),
    ("generate --n 4 --out p.json", "is a file, not a folder"),
    ("generate --n 4 --out busy", "is not empty and not a dataset"),
    ("generate --n 4 --out /dev/null", "is a device, not a folder"),
    ("generate --n 4 --out in.wav/d", "is a file, not a folder"),
    ("generate --n abc --out d", "invalid int value"),
    ("generate --n 4", "required: --out"),
    # ---- stats
    ("stats nothing", "no such dataset folder"),
    ("stats p.json", "is a file; expected a dataset folder"),
    ("stats sub", "no dataset here"),
    ("stats DS --out p.json", "is a file, not a folder"),
    ("stats DS --out DS", "would overwrite the dataset"),
    # ---- train
    ("train --data nothing --out m", "no such dataset folder"),
    ("train --data p.json --out m", "is a file; expected a dataset folder"),
    ("train --data sub --out m", "no dataset here"),
    ("train --data DS --out p.json", "is a file, not a folder"),
    ("train --data DS --out DS", "would overwrite the --data"),
    ("train --data DS --out m --epochs 0", "--epochs: 0 is not valid"),
    ("train --data DS --out m --seed -1", "--seed: -1 is not valid"),
    ("train --data DS --out m --limit 2", "--limit: 2 is not valid"),
    ("train --data DS --out m --batch-size 0", "--batch-size: 0 is not valid"),
    # ---- evaluate
    ("evaluate --model DS --data NS --out e", "not a model folder"),
    ("evaluate --model JUNK --data NS --out e", "not a Keras model file"),
    ("evaluate --model M --data NS --out p.json", "is a file, not a folder"),
    ("evaluate --model M --data NS --out busy", "is not empty and holds no evaluation"),
    ("evaluate --model M --data NS --out M", "would overwrite the --model"),
    ("evaluate --model M --data nothing --out e", "no such NSynth-layout folder"),
    ("evaluate --model M --data sub --out e", "examples.json"),
    ("evaluate --model M --data NS --out e --limit 0", "limit: 0 is not valid"),
    ("evaluate --model M --data NS --out e --batch-size 0", "batch_size: 0 is not"),
    # ---- download-nsynth, soundfont-set, reproduce, the router
    ("download-nsynth --out p.json", "is a file, not a folder"),
    ("download-nsynth --out busy", "is not empty and holds no finished NSynth"),
    ("download-nsynth --out d --sha256 xyz", "give 64 hexadecimal digits"),
    ("soundfont-set --out e --soundfont missing.sf2", "no such SoundFont file"),
    ("soundfont-set --out e --per-family 0", "per_family: 0 is not valid"),
    ("soundfont-set --out p.json --soundfont p.json", "is a file, not a folder"),
    ("soundfont-set --out busy --soundfont p.json", "is not empty and not a SoundFont"),
    ("reproduce --profile nope", "profile 'nope'"),
    ("bogus", "invalid choice: 'bogus'"),
]


def _argv(line: str, shared: dict[str, Path]) -> list[str]:
    words = line.split(" ")
    if line.endswith("-o "):  # an empty output name
        words = words[:-1] + [""]
    out = []
    for w in words:
        head, _, rest = w.partition("/")
        if head in shared:
            w = str(shared[head] / rest) if rest else str(shared[head])
        out.append(w)
    return out


def _check(status, err: str, expected: str, before, after) -> None:
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error:"), err
    assert "Traceback" not in err
    assert expected in err, err
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert not changed, f"changed or left behind: {sorted(changed)}"


def test_warnings_print_as_one_line():
    from fmlib.cli import _one_line_warning

    text = _one_line_warning("two\nlines", UserWarning, "f.py", 1)
    assert text == "warning: two lines (UserWarning)\n"


def test_at_least_60_cases():
    assert len(CASES) >= 60
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(("line", "expected"), CASES, ids=[c[0][:60] for c in CASES])
def test_bad_input(line, expected, shared, tmp_path, monkeypatch, capsys):
    make_sandbox(tmp_path)
    monkeypatch.chdir(tmp_path)
    argv = _argv(line, shared)
    before = snapshot(tmp_path, *shared.values())
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    err = capsys.readouterr().err
    _check(status, err, expected, before, snapshot(tmp_path, *shared.values()))


#: Cases also run as real processes: the exit status, stderr as a user sees it
#: (TensorFlow's native log included, were it printed), no traceback.
SUBPROCESS_CASES = [
    "render p.json -o p.json",
    "render p.json -o /dev/full",
    f"render p.json -o {LONG}.wav",
    "predict M in.wav -o x.json --wav in.wav",
    "predict M in.wav -o p.json --wav p.json",
    "predict JUNK in.wav -o x.json",
    "generate --n 99999999999 --out d",
    "generate --n 4 --prior jazz --out d",
    "train --data DS --out DS",
    "evaluate --model DS --data NS --out e",
    "evaluate --model M --data NS --out p.json",
]


@pytest.mark.parametrize(
    "line", SUBPROCESS_CASES, ids=[c[:60] for c in SUBPROCESS_CASES]
)
def test_bad_input_subprocess(line, shared, tmp_path):
    expected = dict(CASES)[line]
    make_sandbox(tmp_path)
    before = snapshot(tmp_path, *shared.values())
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "fmlib", *_argv(line, shared)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    after = snapshot(tmp_path, *shared.values())
    _check(result.returncode, result.stderr, expected, before, after)


def test_generate_absurd_n_is_refused_at_once(tmp_path):
    """``generate --n 99999999999``: refused in well under 2 s and 300 MB (the
    numbers are printed; the limits are checked loosely, as CI machines vary)."""
    code = (
        "import resource, sys, time\n"
        "t0 = time.perf_counter()\n"
        "from fmlib.cli import main\n"
        "status = main(['generate', '--n', '99999999999', '--out', sys.argv[1]])\n"
        # VmHWM: this process image's own peak. ru_maxrss would start from the
        # forking pytest process's peak (Linux keeps it across fork and exec).
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
        "kib = int(hwm[0].split()[1]) if hwm else "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "rss = kib / 1024\n"
        "print(status, round(time.perf_counter() - t0, 3), round(rss, 1))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "d")],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=60,
    )
    status, seconds, peak_mb = result.stdout.split()
    print(f"generate --n 99999999999: status {status}, {seconds} s, {peak_mb} MB")
    assert status == "2" and float(peak_mb) < 300
    assert list(tmp_path.iterdir()) == []


def test_render_imports_neither_tensorflow_nor_librosa_nor_pandas(tmp_path):
    code = (
        "import sys\n"
        "from fmlib.cli import main\n"
        "assert main(['render', sys.argv[1], '-o', sys.argv[2]]) == 0\n"
        "heavy = ('tensorflow', 'keras', 'librosa', 'pandas', 'matplotlib')\n"
        "print('HEAVY', ','.join(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(EXAMPLE), str(tmp_path / "x.wav")],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "HEAVY"


def test_help_and_version_import_no_command_module():
    code = (
        "import sys\n"
        "from fmlib.cli import main\n"
        "for argv in (['--help'], ['--version'], ['render', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "mods = ('fmlib.datasets.dataset', 'fmlib.estimate.train',"
        " 'fmlib.evaluation.evaluate', 'fmlib.estimate.predict')\n"
        "print('LOADED', ','.join(m for m in mods if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT
    )
    assert "fmlib 0.1.0" in result.stdout and "render a patch JSON" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "LOADED"


@pytest.mark.parametrize("command", ["render", "generate", "train", "predict", "stats"])
def test_command_help_works(command):
    result = subprocess.run(
        [sys.executable, "-m", "fmlib", command, "--help"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
    )
    assert result.returncode == 0 and "usage:" in result.stdout
    assert result.stderr == ""
