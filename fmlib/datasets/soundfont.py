"""The offline evaluation set: NSynth-style notes rendered from a GM SoundFont.

**SoundFont-rendered, not NSynth.** These notes only imitate NSynth's format so that
``python -m fmlib evaluate`` runs without the download; their numbers are not
comparable with the paper's. Every note says so: its ``instrument_source_str`` is
``"soundfont"`` (hence the file names ``<family>_soundfont_<program>-<pitch>-<vel>``),
its ``source_label`` reads "SoundFont-rendered, not NSynth", and the folder has a
README.md and a ``soundfont_set.json`` saying how it was made.

Notes: 4 s long, note-on at 0 s, note-off at 3 s, mono (the mean of the stereo
render), 16 kHz, 64,000 samples. They are rendered at 48 kHz and brought to 16 kHz
by the synthesizer's own zero-phase low-pass
(:func:`fmlib.audio.resample.downsample_48k_to_16k`), so the evaluation notes and the
training data pass through the same filter; then peak-normalised to
:data:`PEAK` (NSynth's notes peak at 0.82 on average on the development set; the
SoundFont's raw levels are 0.07 to 0.35), so velocity changes timbre but not level.

Renderers, the first available wins unless ``renderer`` is given:

* ``fluidsynth``: the reference, Debian's ``fluidsynth`` with FluidR3_GM
  (``apt-get install fluidsynth fluid-soundfont-gm``; MIT licensed), through a MIDI
  file written with pretty_midi.
* ``tinysoundfont`` (pip; import works without pyaudio) with any sf2, by default
  pretty_midi's bundled TimGM6mb.sf2.

GM programs (0-based) mapped to NSynth's 11 families, see :data:`FAMILY_PROGRAMS`:
keyboard 0-7 (pianos, electric pianos, harpsichord, clavinet); mallet 8-15
(chromatic percussion), 47 (timpani), 108 (kalimba), 112 (tinkle bell), 114 (steel
drums); organ 16-20; reed 21-23 (accordions, harmonica: free reeds), 64-71 (saxes,
oboe, English horn, bassoon, clarinet), 109 (bagpipe), 111 (shanai); guitar 24-31,
104-107 (sitar, banjo, shamisen, koto); bass 32-39; string 40-46, 48-51 (ensembles,
synth strings), 110 (fiddle); vocal 52-54 (choir aahs, voice oohs, synth voice);
brass 56-63; flute 72-79; synth_lead 80-87. Unmapped: 55 (orchestra hit), 88-103
(pads and effects), 113, 115-127 (percussion, sound effects).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fmlib import files, paths
from fmlib.audio.audio_io import read_wav, write_wav
from fmlib.audio.resample import downsample_48k_to_16k
from fmlib.errors import InputError
from fmlib.synth.params import DURATION_S, NOTE_OFF_S, RENDER_SAMPLE_RATE, SAMPLE_RATE

#: Label written into every note and the folder's README.
SOURCE_LABEL = "SoundFont-rendered, not NSynth"
#: Render rate before decimation, Hz: the synthesizer's (its filter brings it to
#: 16 kHz).
RENDER_RATE = RENDER_SAMPLE_RATE
#: How the 48 kHz render reaches 16 kHz (recorded in soundfont_set.json; a set made
#: by another resampler is re-rendered, not mixed).
RESAMPLER = "fmlib.synth.engine zero-phase low-pass (flat to 7.6 kHz, zero from 8 kHz)"
#: Peak level of every note after normalisation.
PEAK = 0.8
#: Where Debian's fluid-soundfont-gm installs FluidR3_GM.
FLUIDR3_PATHS = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/soundfonts/FluidR3_GM.sf2"),
)

#: NSynth family -> GM programs (0-based), in the order instruments are picked.
FAMILY_PROGRAMS: dict[str, tuple[int, ...]] = {
    "bass": (33, 32, 34, 35, 36, 37, 38, 39),
    "brass": (56, 57, 60, 61, 58, 59, 62, 63),
    "flute": (73, 72, 74, 75, 76, 77, 78, 79),
    "guitar": (24, 25, 26, 27, 28, 29, 30, 31, 104, 105, 106, 107),
    "keyboard": (0, 4, 1, 2, 3, 5, 6, 7),
    "mallet": (11, 12, 8, 9, 10, 13, 14, 15, 47, 108, 112, 114),
    "organ": (16, 19, 17, 18, 20),
    "reed": (65, 68, 71, 64, 66, 67, 69, 70, 21, 22, 23, 109, 111),
    "string": (40, 48, 42, 41, 43, 44, 45, 46, 49, 50, 51, 110),
    "synth_lead": (80, 81, 82, 83, 84, 85, 86, 87),
    "vocal": (52, 53, 54),
}
#: Pitches (MIDI) rendered per instrument, by family: spread over a usual range.
FAMILY_PITCHES: dict[str, tuple[int, ...]] = {
    "bass": (33, 40, 48),
    "brass": (52, 60, 67),
    "flute": (67, 74, 81),
    "guitar": (45, 52, 60),
    "keyboard": (48, 60, 72),
    "mallet": (60, 72, 84),
    "organ": (48, 60, 72),
    "reed": (50, 57, 64),
    "string": (55, 62, 69),
    "synth_lead": (48, 60, 72),
    "vocal": (52, 60, 67),
}
#: Velocities rendered for every pitch.
VELOCITIES: tuple[int, ...] = (75, 127)
#: What a set is for: ``"eval"`` (the evaluation set: :data:`FAMILY_PITCHES` of
#: ``per_family`` instruments a family) or ``"train"`` (fmnet's teacher notes: every
#: mapped instrument at every pitch of :data:`TRAIN_PITCHES`, from a SoundFont other
#: than the evaluation set's).
PLANS: tuple[str, ...] = ("eval", "train")
#: Pitches (MIDI) of the ``"train"`` plan: every minor third from C1 to C7.
TRAIN_PITCHES: tuple[int, ...] = tuple(range(24, 97, 3))


def default_soundfont() -> tuple[Path, str]:
    """The best available SoundFont and renderer: (path, renderer name)."""
    if shutil.which("fluidsynth"):
        for p in FLUIDR3_PATHS:
            if p.is_file():
                return p, "fluidsynth"
    return timgm6mb_path(), "tinysoundfont"


def _train_soundfont(soundfont: str | os.PathLike | None) -> Path:
    """The SoundFont of a ``"train"`` set: FluidR3_GM by default, never the
    evaluation set's TimGM6mb (training on it would leak into that evaluation)."""
    if soundfont is None:
        found = [p for p in FLUIDR3_PATHS if p.is_file()]
        if not found:
            raise InputError(
                "--plan train renders FluidR3_GM.sf2, which is not installed; "
                "valid: apt-get install fluid-soundfont-gm, or give --soundfont"
            )
        return found[0]
    path = files.check_input(Path(soundfont), what="SoundFont file")
    eval_sf = timgm6mb_path()
    if eval_sf.is_file() and files.file_sha256(path) == files.file_sha256(eval_sf):
        raise InputError(
            f"{path}: is TimGM6mb, the evaluation set's SoundFont; valid for --plan "
            "train: any other sf2 (default FluidR3_GM)"
        )
    return path


def _finish(stereo_48k: np.ndarray) -> np.ndarray | None:
    """(n, 2) or (n,) float at 48 kHz -> mono 16 kHz, 64,000 samples, peak PEAK.

    None when the render is silent (a SoundFont without a sample for that key)."""
    x = np.asarray(stereo_48k, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    y = downsample_48k_to_16k(x)
    n = round(DURATION_S * SAMPLE_RATE)
    out = np.zeros(n)
    out[: min(n, y.size)] = y[:n]
    peak = np.abs(out).max()
    if peak < 1e-6:
        return None
    return (out * (PEAK / peak)).astype(np.float32)


class _TinyRenderer:
    def __init__(self, soundfont: Path):
        import tinysoundfont

        self._synth = tinysoundfont.Synth(samplerate=RENDER_RATE)
        try:
            self._sfid = self._synth.sfload(str(soundfont))
        except Exception as exc:  # tinysoundfont raises its own exception types
            raise InputError(f"{soundfont}: not a loadable SoundFont ({exc})") from None

    def name(self, program: int) -> str:
        return str(self._synth.sfpreset_name(self._sfid, 0, program))

    def render(self, program: int, pitch: int, velocity: int) -> np.ndarray | None:
        s = self._synth
        s.program_select(0, self._sfid, 0, program)
        s.noteon(0, pitch, velocity)
        on = np.frombuffer(
            s.generate(round(NOTE_OFF_S * RENDER_RATE)), np.float32
        ).copy()
        s.noteoff(0, pitch)
        rest = round((DURATION_S - NOTE_OFF_S) * RENDER_RATE)
        off = np.frombuffer(s.generate(rest), np.float32).copy()
        s.sounds_off(0)
        s.generate(RENDER_RATE // 10)  # flush the voice before the next note
        return _finish(np.concatenate([on, off]).reshape(-1, 2))


class _FluidRenderer:
    def __init__(self, soundfont: Path):
        self._soundfont = soundfont

    def name(self, program: int) -> str:
        import pretty_midi

        return pretty_midi.program_to_instrument_name(program)

    def render(self, program: int, pitch: int, velocity: int) -> np.ndarray | None:
        import pretty_midi

        midi = pretty_midi.PrettyMIDI()
        inst = pretty_midi.Instrument(program=program)
        inst.notes.append(pretty_midi.Note(velocity, pitch, 0.0, NOTE_OFF_S))
        midi.instruments.append(inst)
        with tempfile.TemporaryDirectory() as tmp:
            mid, wav = Path(tmp) / "note.mid", Path(tmp) / "note.wav"
            midi.write(str(mid))
            cmd = ["fluidsynth", "-ni", "-g", "1.0", "-r", str(RENDER_RATE), "-F"]
            cmd += [str(wav), str(self._soundfont), str(mid)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0 or not wav.is_file():
                raise InputError(f"fluidsynth failed: {done.stderr.strip()[:200]}")
            audio, sr = read_wav(wav)
        if sr != RENDER_RATE:
            raise InputError(f"fluidsynth wrote {sr} Hz instead of {RENDER_RATE}")
        return _finish(audio)


def timgm6mb_path() -> Path:
    """pretty_midi's bundled TimGM6mb.sf2: the evaluation set's SoundFont."""
    import pretty_midi

    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


def _note_plan(per_family: int, plan_name: str = "eval") -> list[dict]:
    plan = []
    for family, programs in FAMILY_PROGRAMS.items():
        chosen = programs if plan_name == "train" else programs[:per_family]
        pitches = TRAIN_PITCHES if plan_name == "train" else FAMILY_PITCHES[family]
        for program in chosen:
            for pitch in pitches:
                for velocity in VELOCITIES:
                    plan.append(
                        {
                            "note_str": f"{family}_soundfont_{program:03d}"
                            f"-{pitch:03d}-{velocity:03d}",
                            "instrument_str": f"{family}_soundfont_{program:03d}",
                            "instrument_family_str": family,
                            "instrument_source_str": "soundfont",
                            "gm_program": program,
                            "pitch": pitch,
                            "velocity": velocity,
                            "sample_rate": SAMPLE_RATE,
                            "source_label": SOURCE_LABEL,
                        }
                    )
    return plan


def build_soundfont_set(
    out_dir: str | os.PathLike = paths.SOUNDFONT_SET_DIR,
    *,
    soundfont: str | os.PathLike | None = None,
    renderer: str | None = None,
    per_family: int = 2,
    families: tuple[str, ...] | None = None,
    plan: str = "eval",
    progress: bool = True,
) -> Path:
    """Render the SoundFont evaluation set in NSynth's jsonwav layout (resumable).

    Args:
        out_dir: Folder to fill with ``examples.json``, ``audio/``, ``README.md``
            and ``soundfont_set.json``.
        soundfont: An sf2 file; default FluidR3_GM when fluidsynth is installed,
            else pretty_midi's TimGM6mb.sf2.
        renderer: "fluidsynth" or "tinysoundfont"; default as for ``soundfont``.
        per_family: GM programs (instruments) per family, 1 or more; each gives
            3 pitches x 2 velocities (default 2: 132 notes).
        families: Restrict to these NSynth families (default all 11).
        plan: One of :data:`PLANS`: ``"eval"`` (default) or ``"train"`` (every
            instrument of :data:`FAMILY_PROGRAMS` at :data:`TRAIN_PITCHES`, x 2
            velocities: about 5,000 notes, 10 minutes; ``per_family`` is ignored; the
            SoundFont defaults to FluidR3_GM through tinysoundfont and may not be
            TimGM6mb, the evaluation set's).
        progress: Show a tqdm bar.

    Returns:
        ``out_dir``. Notes whose WAV exists are kept (rerun to resume); a folder made
        with a different SoundFont, renderer or peak is refused.
    """
    if (
        isinstance(per_family, bool)
        or not isinstance(per_family, int)
        or per_family < 1
    ):
        raise InputError(
            f"per_family: {per_family!r} is not valid; valid: an integer >= 1"
        )
    if plan not in PLANS:
        raise InputError(f"plan {plan!r}: valid: {', '.join(PLANS)}")
    if plan == "train":
        sf_path, default_renderer = _train_soundfont(soundfont), "tinysoundfont"
    else:
        default_path, default_renderer = default_soundfont()
        sf_path = Path(soundfont) if soundfont is not None else default_path
    renderer = renderer or (
        "tinysoundfont" if soundfont is not None else default_renderer
    )
    if renderer not in ("fluidsynth", "tinysoundfont"):
        raise InputError(f"renderer {renderer!r}: valid: fluidsynth, tinysoundfont")
    if renderer == "fluidsynth" and not shutil.which("fluidsynth"):
        raise InputError("fluidsynth is not installed; apt-get install fluidsynth")
    sf_path = files.check_input(sf_path, what="SoundFont file")
    families = tuple(families) if families else tuple(FAMILY_PROGRAMS)
    unknown = sorted(set(families) - set(FAMILY_PROGRAMS))
    if unknown:
        raise InputError(
            f"unknown families {unknown}; valid: {', '.join(FAMILY_PROGRAMS)}"
        )
    out_dir = files.check_output(out_dir, kind="folder")
    stamp = out_dir / "soundfont_set.json"
    if out_dir.is_dir() and not stamp.is_file():
        with files.os_errors(out_dir, action="cannot read"):
            busy = any(out_dir.iterdir())
        if busy:
            raise InputError(
                f"{out_dir}: is not empty and not a SoundFont set (no "
                "soundfont_set.json); give an empty or new folder for --out"
            )
    files.check_distinct(
        {
            "the set's " + name: out_dir / name
            for name in ("soundfont_set.json", "examples.json", "README.md")
        },
        {"--soundfont": sf_path},
    )
    audio_dir = out_dir / "audio"
    with files.os_errors(out_dir, action="cannot create the folder"):
        audio_dir.mkdir(parents=True, exist_ok=True)
    how = {
        "label": SOURCE_LABEL,
        "soundfont": sf_path.name,
        "soundfont_sha256": files.file_sha256(sf_path),
        "renderer": renderer,
        "renderer_version": _renderer_version(renderer),
        "render_rate": RENDER_RATE,
        "resampler": RESAMPLER,
        "peak": PEAK,
        "duration_s": DURATION_S,
        "note_off_s": NOTE_OFF_S,
        "sample_rate": SAMPLE_RATE,
        "plan": plan,
    }
    if stamp.is_file():
        old = {"plan": "eval", **json.loads(stamp.read_text())}  # older sets: eval
        if old.get("resampler") != RESAMPLER and all(
            old.get(k) == v for k, v in how.items() if k != "resampler"
        ):
            # made by an older fmlib whose 48 -> 16 kHz filter differed: the notes
            # are ours to remake, not to mix with new ones
            print(f"{out_dir}: made with another resampler; re-rendering it")
            shutil.rmtree(audio_dir, ignore_errors=True)
            (out_dir / "examples.json").unlink(missing_ok=True)
            audio_dir.mkdir()
            old = {**old, "resampler": RESAMPLER}
        if {k: old.get(k) for k in how} != how:
            raise InputError(
                f"{out_dir} was rendered differently ({old.get('soundfont')}, "
                f"{old.get('renderer')}, plan {old.get('plan')}); choose another "
                "--out or delete it"
            )
    _write_json(stamp, {**how, "per_family": per_family, "families": list(families)})
    engine = (
        _TinyRenderer(sf_path)
        if renderer == "tinysoundfont"
        else _FluidRenderer(sf_path)
    )
    notes = [
        n
        for n in _note_plan(per_family, plan)
        if n["instrument_family_str"] in families
    ]
    entries, silent = {}, []
    for note in tqdm(notes, desc="soundfont notes", unit="note", disable=not progress):
        note = {**note, "gm_name": engine.name(note["gm_program"])}
        wav = audio_dir / f"{note['note_str']}.wav"
        if not wav.is_file():
            audio = engine.render(note["gm_program"], note["pitch"], note["velocity"])
            if audio is None:  # no sample for this key in the SoundFont: leave it out
                silent.append(note["note_str"])
                continue
            write_wav(wav, audio, SAMPLE_RATE)
        entries[note["note_str"]] = note
    old_entries = {}
    index = out_dir / "examples.json"
    if index.is_file():
        old_entries = json.loads(index.read_text())
    _write_json(index, {**old_entries, **entries})
    info = json.loads(stamp.read_text())
    left_out = set(info.get("silent_notes_left_out", [])) | set(silent)
    info["silent_notes_left_out"] = sorted(left_out)
    _write_json(stamp, info)
    files.write_text(out_dir / "README.md", _readme(how))
    return out_dir


def _renderer_version(renderer: str) -> str:
    if renderer == "tinysoundfont":
        try:
            return version("tinysoundfont")
        except PackageNotFoundError:
            return "unknown"
    done = subprocess.run(["fluidsynth", "--version"], capture_output=True, text=True)
    return done.stdout.splitlines()[0] if done.stdout else "unknown"


def _write_json(path: Path, obj) -> None:
    files.write_json(path, obj, sort_keys=True)


def _readme(how: dict) -> str:
    use = (
        "They are fmnet's teacher notes (`--plan train`): labelled by the table"
        " lookup, they teach design C what real notes look like. Never evaluate on"
        " them.\n\n"
        if how.get("plan") == "train"
        else ""
    )
    return (
        f"# {SOURCE_LABEL}\n\n"
        "These notes imitate the layout of NSynth (examples.json +"
        " audio/<note_str>.wav, 16 kHz mono, 4 s, note-off at 3 s) but are NOT NSynth:"
        " they were rendered from"
        f" the General MIDI SoundFont `{how['soundfont']}` with {how['renderer']}"
        f" ({how['renderer_version']}), peak-normalised to {how['peak']}. Results on"
        " this set are not comparable with the paper's NSynth numbers.\n\n"
        f"{use}"
        "Made by `python -m fmlib soundfont-set`; see fmlib/datasets/soundfont.py for"
        " the GM program to NSynth family mapping.\n"
    )


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default data/soundfont-set, with --plan train "
        "data/soundfont-train)",
    )
    parser.add_argument(
        "--soundfont",
        type=Path,
        default=None,
        help="sf2 file (default: best available)",
    )
    parser.add_argument(
        "--per-family",
        type=int,
        default=2,
        help="GM instruments per family (default 2; eval plan only)",
    )
    parser.add_argument(
        "--plan",
        choices=PLANS,
        default="eval",
        help="eval: the evaluation set; train: fmnet's teacher notes (every "
        "instrument, pitches 24-96, FluidR3_GM by default)",
    )


def run(args: argparse.Namespace) -> int:
    default_out = paths.SOUNDFONT_TRAIN_DIR if args.plan == "train" else None
    out = build_soundfont_set(
        args.out or default_out or paths.SOUNDFONT_SET_DIR,
        soundfont=args.soundfont,
        per_family=args.per_family,
        plan=args.plan,
    )
    n = len(json.loads((out / "examples.json").read_text()))
    print(f"{n} SoundFont-rendered notes (not NSynth) in {out}")
    return 0
