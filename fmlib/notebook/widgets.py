"""The notebooks' interactive widgets (ipywidgets): the synthesizer explorer and the
"re-synthesise your own sound" panel.

Both are built by a function that returns the widget object, so a test can construct
one, call its methods (:meth:`SynthExplorer.set_patch`,
:meth:`SynthExplorer.randomize`, :meth:`SynthExplorer.load_reference`,
:meth:`ResynthesisPanel.load_bytes`...) or set slider values, and read what it
rendered without a browser. Every slider's range and scale comes from
:data:`fmlib.synth.params.PARAMS`; nothing here repeats a limit.

Playback: players hold 16-bit WAV bytes at 16 kHz. A rendered note can peak above
1.0 (up to about 1.5, see :func:`fmlib.synth.engine.render`); players are scaled down by
their peak only when it exceeds full scale (:func:`playback_gain`), so nothing is
clipped and notes within full scale keep their loudness. A/B players share one gain.
The audio arrays, the distances and the saved files are never scaled.

Every file is written through :mod:`fmlib.files` (atomically); the save buttons
refuse to replace an existing file unless "overwrite" is ticked.

Why one module of about 1,100 lines: the explorer and the re-synthesis panel are
connected (the panel sends its patch to an explorer, both share the player and the
distance table); ipywidgets classes with their callbacks read best side by side.
"""

from __future__ import annotations

import html
import io
import json
import math
import os
import re
import wave
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np

from fmlib.audio.audio_io import write_wav
from fmlib.errors import InputError, MissingFileError
from fmlib.paths import PATCHES_DIR
from fmlib.synth import params as P
from fmlib.synth.algorithms import ALGORITHMS, DEFAULT_ALGORITHM
from fmlib.synth.engine import render
from fmlib.synth.patch import Patch, patch_from_dict, patch_from_vector, save_patch

#: The patch the explorer starts from: a bright, harmonic, brass-like tone.
DEFAULT_PATCH: dict[str, Any] = {
    "algorithm": DEFAULT_ALGORITHM,
    "carrier_hz": 220.0,
    "modulators": [
        {"ratio": 1.0, "index": 1.5},
        {"ratio": 2.0, "index": 0.5},
        {"ratio": 3.0, "index": 0.3},
        {"ratio": 1.0, "index": 0.0},
        {"ratio": 1.0, "index": 0.0},
    ],
    "envelope": {"attack_s": 0.05, "decay_s": 0.2, "sustain": 0.6, "release_s": 0.3},
}

#: The three distances shown live (fmlib.audio.metrics, section 5.3.3 of the paper).
DISTANCE_NAMES: tuple[str, ...] = ("fft", "stft", "logmel")
DISTANCE_LABELS = {"fft": "FFT", "stft": "STFT", "logmel": "log-mel"}

#: CSS classes the browser test looks for (not positions in the notebook).
EXPLORER_CLASS = "fmlib-explorer"
PANEL_CLASS = "fmlib-resynthesis"

_FILE_STEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: Spectrogram of the explorer: STFT size and hop at 16 kHz (64 ms every 32 ms),
#: enough to see partials and the envelope; the image is small so that a slider
#: move re-renders well under 150 ms (``benchmarks/bench_widgets.py``).
_SPEC_N_FFT = 1024
_SPEC_HOP = 512
_SPEC_FLOOR_DB = -80.0
#: Columns of the min/max waveform overview.
_WAVE_COLUMNS = 600


# --------------------------------------------------------------------------- audio
def playback_gain(*signals: np.ndarray) -> float:
    """Gain that keeps every signal within [-1, 1]: ``1 / peak`` when the largest
    peak exceeds 1.0, else 1.0 (quieter sounds keep their level)."""
    peak = max((float(np.max(np.abs(s))) for s in signals if np.size(s)), default=0.0)
    return 1.0 / peak if peak > 1.0 else 1.0


def audio_bytes(
    audio: np.ndarray, *, sample_rate: int = P.SAMPLE_RATE, gain: float | None = None
) -> bytes:
    """16-bit mono WAV bytes for a player.

    Args:
        audio: shape (n,), float, nominal range [-1, 1] (a note may peak near 1.5).
        sample_rate: Hz.
        gain: Playback gain; ``None`` for :func:`playback_gain` of ``audio`` (scaled
            down by its peak only when the peak exceeds 1.0, never clipped).
    """
    y = np.asarray(audio, dtype=np.float64).reshape(-1)
    g = playback_gain(y) if gain is None else float(gain)
    pcm = np.clip(np.round(y * g * 32767.0), -32768, 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def player(audio: np.ndarray, *, sample_rate: int = P.SAMPLE_RATE):
    """An IPython audio player for (n,) float audio, scaled down by its peak only
    when the peak exceeds 1.0 (:func:`playback_gain`): never clipped, and notes
    within full scale keep their loudness."""
    from IPython.display import Audio

    return Audio(data=audio_bytes(audio, sample_rate=sample_rate))


def hz_to_midi(hz: float) -> float:
    """MIDI note number of a frequency, a Python float (:func:`P.hz_to_midi`)."""
    return float(P.hz_to_midi(float(hz)))


def midi_to_hz(note: float) -> float:
    """Frequency of a (fractional) MIDI note number, Hz (:func:`P.midi_to_hz`)."""
    return float(P.midi_to_hz(float(note)))


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` zero-padded or trimmed at the end to ``n`` samples."""
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    if x.size >= n:
        return x[:n].copy()
    return np.concatenate([x, np.zeros(n - x.size, dtype=np.float32)])


class _Spectra:
    """What the three live distances need from one signal, computed once: the
    :mod:`fmlib.audio.metrics` definitions (whole-signal rfft magnitude, |STFT|
    2048/512, log1p of the 128-band mel power), without the metrics a widget does not
    show."""

    def __init__(self, x: np.ndarray) -> None:
        from fmlib.audio import metrics

        f = metrics.features(x, with_mss=False)
        self.fft_mag, self.stft_mag, self.log_mel = f.fft_mag, f.stft_mag, f.log_mel

    def distances(self, other: _Spectra) -> dict[str, float]:
        """FFT, STFT and log-mel distances (as :mod:`fmlib.audio.metrics` defines
        them)."""
        return {
            "fft": float(np.linalg.norm(self.fft_mag - other.fft_mag)),
            "stft": float(np.linalg.norm(self.stft_mag - other.stft_mag)),
            "logmel": float(np.linalg.norm(self.log_mel - other.log_mel)),
        }


def _distance_table(rows: dict[str, dict[str, float]], caption: str = "") -> str:
    """An HTML table: one row per compared signal, one column per distance."""
    pad = 'style="padding: 0 0.8em"'
    head = "".join(f"<th {pad}>{DISTANCE_LABELS[k]}</th>" for k in DISTANCE_NAMES)
    body = "".join(
        f'<tr><td style="text-align:left">{html.escape(label)}</td>'
        + "".join(f"<td {pad}>{d[k]:,.1f}</td>" for k in DISTANCE_NAMES)
        + "</tr>"
        for label, d in rows.items()
    )
    cap = f"<div>{html.escape(caption)}</div>" if caption else ""
    return (
        f'{cap}<table class="fmlib-distances" style="text-align:right">'
        f"<tr><th></th>{head}</tr>{body}</table>"
    )


# --------------------------------------------------------------------------- plot
class _NotePlot:
    """Waveform (min/max overview) over a spectrogram, drawn into one reused figure.

    Speed (a slider move re-renders within 150 ms, ``benchmarks/bench_widgets.py``):
    the axes, ticks and labels are drawn once into a background; a re-draw restores
    it and draws only the changing artists (the waveform lines, the spectrogram
    image, the title) before encoding the PNG ("blitting"). The figure ignores the
    notebook's ``rcParams`` for size and saving (``savefig.bbox: tight`` would draw
    everything twice) and uses matplotlib's object API, not pyplot, so nothing is
    left open in pyplot's registry.
    """

    def __init__(self, duration_s: float, *, max_hz: float = P.SAMPLE_RATE / 2):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        from fmlib.notebook.plots import COLORS

        self.fig = Figure(figsize=(7.5, 4.0), dpi=88)
        self.canvas = FigureCanvasAgg(self.fig)
        ax0, ax1 = self.fig.subplots(2, 1, height_ratios=[1, 2], sharex=True)
        x = np.linspace(0.0, duration_s, _WAVE_COLUMNS)
        color = COLORS["carrier"]
        (self.line_hi,) = ax0.plot(x, np.zeros_like(x), color=color, lw=0.8)
        (self.line_lo,) = ax0.plot(x, np.zeros_like(x), color=color, lw=0.8)
        ax0.set_xlim(0.0, duration_s)
        ax0.set_ylim(-1.6, 1.6)
        ax0.set_ylabel("amplitude")
        ax0.axhline(1.0, color="0.6", lw=0.5, ls=":")
        ax0.axhline(-1.0, color="0.6", lw=0.5, ls=":")
        n_bins = _SPEC_N_FFT // 2 + 1
        self.image = ax1.imshow(
            np.full((n_bins, 2), _SPEC_FLOOR_DB, dtype=np.float32),
            origin="lower",
            aspect="auto",
            extent=(0.0, duration_s, 0.0, P.SAMPLE_RATE / 2),
            vmin=_SPEC_FLOOR_DB,
            vmax=0.0,
            cmap="magma",
            interpolation="nearest",
        )
        ax1.set_ylim(0.0, max_hz)
        ax1.set_xlabel("time (s)")
        ax1.set_ylabel("Hz")
        ax1.grid(False)
        self.title = ax0.set_title(" ")
        self.fig.subplots_adjust(left=0.11, right=0.98, top=0.91, bottom=0.13)
        self.axes = (ax0, ax1)
        self.artists = (
            (ax1, self.image),
            (ax0, self.line_hi),
            (ax0, self.line_lo),
            (ax0, self.title),
        )
        for _, artist in self.artists:
            artist.set_animated(True)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)
        #: Size of the PNG in pixels (the image widget shows it at this size).
        self.width_px, self.height_px = self.canvas.get_width_height()

    def png(self, audio: np.ndarray, title: str) -> bytes:
        """The figure for ``audio`` (shape (n,), 16 kHz) as PNG bytes."""
        from PIL import Image

        y = np.asarray(audio, dtype=np.float32).reshape(-1)
        hi, lo = _min_max_columns(y, _WAVE_COLUMNS)
        self.line_hi.set_ydata(hi)
        self.line_lo.set_ydata(lo)
        self.image.set_data(_spectrogram_db(y))
        self.title.set_text(title)
        self.canvas.restore_region(self.background)
        for ax, artist in self.artists:
            ax.draw_artist(artist)
        rgba = np.asarray(self.canvas.buffer_rgba())
        buf = io.BytesIO()
        Image.fromarray(rgba[..., :3]).save(buf, format="png", compress_level=1)
        return buf.getvalue()


def _min_max_columns(y: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-column maximum and minimum of ``y`` over ``columns`` equal slices (the
    last ``len(y) % columns`` samples join the last slice): shape (columns,) each."""
    if y.size < columns:
        y = np.pad(y, (0, columns - y.size))
    width = y.size // columns
    body = y[: width * columns].reshape(columns, width)
    hi, lo = body.max(axis=1), body.min(axis=1)
    tail = y[width * columns :]
    if tail.size:
        hi[-1], lo[-1] = max(hi[-1], tail.max()), min(lo[-1], tail.min())
    return hi, lo


def _spectrogram_db(y: np.ndarray) -> np.ndarray:
    """|STFT| in dB re its maximum, floored at -80 dB: shape (513, frames)."""
    import librosa

    if y.size < _SPEC_N_FFT:
        y = np.pad(y, (0, _SPEC_N_FFT - y.size))
    frames = librosa.util.frame(
        np.pad(y, _SPEC_N_FFT // 2), frame_length=_SPEC_N_FFT, hop_length=_SPEC_HOP
    )
    window = np.hanning(_SPEC_N_FFT + 1)[:-1].astype(np.float32)
    mag = np.abs(np.fft.rfft(frames.T * window, axis=1)).T
    peak = float(mag.max())
    if peak <= 0:
        return np.full(mag.shape, _SPEC_FLOOR_DB, dtype=np.float32)
    db = 20.0 * np.log10(np.maximum(mag / peak, 1e-5))
    return np.maximum(db, _SPEC_FLOOR_DB).astype(np.float32)


# --------------------------------------------------------------------------- controls
#: How much longer the release slider reaches for the exponential curve: its release
#: falls 96 dB (to :data:`fmlib.synth.params.EXPONENTIAL_FLOOR_DB`) where the audible
#: part of a linear release falls about 20 dB, so the same audible release takes
#: about 96 / 20 = 4.8 times longer (a DX7 voice's release, imported, often does).
EXPONENTIAL_RELEASE_STRETCH = P.EXPONENTIAL_FLOOR_DB / -20.0


def slider_range(
    name: str, *, curve: str = P.DEFAULT_ENVELOPE_CURVE
) -> tuple[float, float]:
    """A slider's (low, high): the paper's range, except the modulation indices,
    which reach the renderer's valid maximum (:data:`fmlib.synth.params.INDEX`
    ``valid_high``), since indices above the paper's 8 are meaningful (brighter),
    and the release of the exponential ``curve``, which reaches
    :data:`EXPONENTIAL_RELEASE_STRETCH` times the paper's 0.8 s."""
    spec = P.PARAMS[name]
    if spec is P.INDEX:
        return spec.low, spec.valid_high
    if spec is P.RELEASE and curve == "exponential":
        return spec.low, spec.high * EXPONENTIAL_RELEASE_STRETCH
    return spec.low, spec.high


def _slider(name: str, value: float) -> W.Widget:
    """A slider over :func:`slider_range` of ``name``, logarithmic when its scale
    is."""
    spec = P.PARAMS[name]
    low, high = slider_range(name)
    common = {
        "description": name,
        "tooltip": f"{spec.description} ({spec.unit})",
        "continuous_update": False,
        "style": {"description_width": "80px"},
        "layout": W.Layout(width="360px"),
    }
    value = min(max(value, low), high)
    if spec.scale == "log":
        s = W.FloatLogSlider(
            value=value,
            base=10,
            min=math.log10(low),
            max=math.log10(high),
            step=0.001,
            readout_format=".4g",
            **common,
        )
    else:
        step = 0.01 if spec is P.INDEX else (high - low) / 1000
        s = W.FloatSlider(
            value=value, min=low, max=high, step=step, readout_format=".3g", **common
        )
    s.add_class(f"fmlib-slider-{name}")
    return s


def _nearest_ratio(value: float) -> float:
    return min(P.DISCRETE_RATIOS, key=lambda r: abs(math.log(r / value)))


def _checked_stem(name: str) -> str:
    stem = name.strip()
    if not _FILE_STEM.match(stem):
        raise InputError(
            f"file name {name!r}: use letters, digits, '_', '.', '-' (no folders)"
        )
    return stem


def _uploaded_files(change) -> list[tuple[str, bytes]]:
    """(name, bytes) of a FileUpload's new value (ipywidgets 8: a tuple of dicts)."""
    return [
        (str(item.get("name", "upload")), bytes(item["content"]))
        for item in (change["new"] or ())
    ]


def patch_from_bytes(data: bytes, name: str = "patch") -> Patch:
    """A patch from a JSON document or a DX7 ``.syx`` dump (its first voice).

    Raises:
        InputError: neither a valid patch JSON nor a DX7 dump fmlib can represent.
    """
    data = bytes(data)
    if data[:1] == b"\xf0" or name.lower().endswith(".syx"):
        from fmlib.synth import dx7

        voices = dx7.parse_sysex(data, where=name)
        return dx7.voice_to_patch(voices[0])
    try:
        d = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"{name}: not a patch JSON document ({exc})") from None
    try:
        return patch_from_dict(d)
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from None


def _read_input(path: str | os.PathLike, what: str) -> bytes:
    from fmlib import files

    p = files.check_input(Path(str(path).strip()).expanduser(), what=what)
    try:
        return p.read_bytes()
    except OSError as exc:
        raise InputError(files.os_error_message(p, exc, action="cannot read")) from None


# --------------------------------------------------------------------------- explorer
class SynthExplorer(W.VBox):
    """Sliders for every patch parameter, a player, a live waveform/spectrogram, and
    A/B against a reference sound with the three distances.

    Attributes:
        sliders: flat parameter name (:data:`fmlib.synth.params.TARGET_NAMES`) ->
        slider. algorithm: Dropdown over :data:`fmlib.synth.algorithms.ALGORITHMS`.
        midi: MIDI note of the carrier, kept in sync with the ``carrier_hz`` slider.
        snap: Toggle that snaps ratio sliders to
        :data:`fmlib.synth.params.DISCRETE_RATIOS`. curve: Toggle buttons over
        :data:`fmlib.synth.params.ENVELOPE_CURVES` (the envelope's decay and release:
        straight lines in amplitude or in dB). seed, random_button: The paper's
        sampler (:func:`fmlib.datasets.sampler.sample_note`)
            with this seed; each click draws and then advances the seed.
        patch_path, load_button, patch_upload: Load a patch JSON or DX7 ``.syx``.
        reference_path, reference_button, reference_upload: Load a reference sound.
        player: ``ipywidgets.Audio``, A: the current note (WAV bytes).
        player_reference: B: the reference (WAV bytes), shown in ``reference_row``
            once a reference is loaded (an empty player makes Chromium log a
            failed media request).
        distances_html: The three distances between A and B.
        distances: The last distances (``None`` without a reference).
        image: ``ipywidgets.Image`` with the waveform and spectrogram (PNG).
        name, overwrite: File stem and "replace existing files" for the save buttons.
        status: Label with the last action or error.
        audio: The current note, float32 of shape (duration_s * 16000,).
        reference: The reference, float32 of the same shape (``None`` before).
        out_dir: Folder the save buttons write to.
    """

    def __init__(
        self,
        *,
        patch: Patch | dict | None = None,
        out_dir: str | os.PathLike = PATCHES_DIR,
        duration_s: float = P.DURATION_S,
        note_off_s: float = P.NOTE_OFF_S,
    ) -> None:
        start = patch_from_dict(patch if patch is not None else DEFAULT_PATCH)
        self.out_dir = Path(out_dir)
        self.duration_s = duration_s
        self.note_off_s = note_off_s
        self.level = float(start.level)
        self.audio = np.zeros(0, dtype=np.float32)
        self.reference: np.ndarray | None = None
        self.reference_name = ""
        self.distances: dict[str, float] | None = None
        self._reference_spectra: _Spectra | None = None
        self._reference_gain: float | None = None
        self._updating = False
        self._plot = _NotePlot(duration_s)

        self.algorithm = W.Dropdown(
            options=sorted(ALGORITHMS), value=start.algorithm, description="algorithm"
        )
        self.sliders = {
            name: _slider(name, float(v))
            for name, v in zip(P.TARGET_NAMES, start.to_vector(), strict=True)
        }
        self._fit_release_range(start.envelope.curve)
        self.sliders["release_s"].value = float(start.envelope.release_s)
        lo, hi = slider_range("carrier_hz")
        self.midi = W.BoundedFloatText(
            value=round(hz_to_midi(self.sliders["carrier_hz"].value), 2),
            min=math.ceil(hz_to_midi(lo) * 100) / 100,
            max=math.floor(hz_to_midi(hi) * 100) / 100,
            step=1.0,
            description="MIDI note",
            tooltip="the carrier as a MIDI note (69 = A4 = 440 Hz), fractions allowed",
            layout=W.Layout(width="170px"),
        )
        self.midi.add_class("fmlib-midi")
        self.curve = W.ToggleButtons(
            options=list(P.ENVELOPE_CURVES),
            value=start.envelope.curve,
            description="curve",
            tooltips=[
                "decay and release: straight lines in amplitude (the paper's ADSR)",
                "decay and release: straight lines in dB, as a DX7 plays",
            ],
            style={"button_width": "90px"},
        )
        self.curve.add_class("fmlib-curve")
        self.snap = W.ToggleButton(
            value=False, description="snap ratios", tooltip="to the discrete ratio set"
        )
        self.seed = W.BoundedIntText(
            value=0,
            min=0,
            max=2**31 - 1,
            description="seed",
            layout=W.Layout(width="160px"),
        )
        self.random_button = W.Button(
            description="random patch",
            icon="random",
            tooltip="the paper's dataset sampler with this seed",
        )
        self.patch_path = W.Text(
            placeholder="path/to/patch.json or .syx", description="patch file"
        )
        self.patch_path.add_class("fmlib-load-path")
        self.load_button = W.Button(description="load patch", icon="folder-open")
        self.load_button.add_class("fmlib-load-button")
        self.patch_upload = W.FileUpload(
            accept=".json,.syx", multiple=False, description="upload patch"
        )
        self.reference_path = W.Text(
            placeholder="path/to/sound.wav", description="reference"
        )
        self.reference_path.add_class("fmlib-reference-path")
        self.reference_button = W.Button(description="load reference", icon="music")
        self.reference_button.add_class("fmlib-reference-button")
        self.reference_upload = W.FileUpload(
            accept=".wav,.flac,.ogg,audio/*", multiple=False, description="upload"
        )
        self.name = W.Text(value="my_patch", description="file name")
        self.overwrite = W.Checkbox(
            value=False,
            description="overwrite",
            indent=False,
            tooltip="replace a file of the same name",
        )
        self.save_patch_button = W.Button(description="save patch JSON", icon="save")
        self.save_wav_button = W.Button(description="save WAV", icon="save")
        self.save_syx_button = W.Button(
            description="export .syx",
            icon="download",
            tooltip="a DX7 single-voice sysex dump (algorithm dx7_18 only)",
        )
        self.status = W.Label(value="")
        self.status.add_class("fmlib-status")
        self.player = W.Audio(format="wav", autoplay=False, controls=True)
        self.player.add_class("fmlib-explorer-player")
        self.player_reference = W.Audio(format="wav", autoplay=False, controls=True)
        self.player_reference.add_class("fmlib-reference-player")
        self.reference_row = W.HBox([])
        self.distances_html = W.HTML(value="<i>no reference loaded</i>")
        # at its own pixel size: a flex box would stretch it (blurred)
        self.image = W.Image(
            format="png",
            layout=W.Layout(
                width=f"{self._plot.width_px}px", height=f"{self._plot.height_px}px"
            ),
        )
        self.image.add_class("fmlib-explorer-image")

        for w in (self.algorithm, self.snap, self.curve, *self.sliders.values()):
            w.observe(self._on_change, names="value")
        self.sliders["carrier_hz"].observe(self._carrier_to_midi, names="value")
        self.midi.observe(self._midi_to_carrier, names="value")
        self.random_button.on_click(lambda _: self._report(self._random_clicked))
        self.load_button.on_click(lambda _: self._report(self._load_clicked))
        self.reference_button.on_click(lambda _: self._report(self._reference_clicked))
        self.patch_upload.observe(self._on_patch_upload, names="value")
        self.reference_upload.observe(self._on_reference_upload, names="value")
        self.save_patch_button.on_click(
            lambda _: self._report(self._saved(self.save_patch))
        )
        self.save_wav_button.on_click(
            lambda _: self._report(self._saved(self.save_wav))
        )
        self.save_syx_button.on_click(
            lambda _: self._report(self._saved(self.export_syx))
        )

        n = P.N_MODULATORS
        names = list(P.TARGET_NAMES)
        rows = [
            W.HBox([self.algorithm, self.snap, self.seed, self.random_button]),
            W.HBox([self.sliders["carrier_hz"], self.midi]),
        ]
        for i in range(n):
            rows.append(
                W.HBox([self.sliders[names[1 + i]], self.sliders[names[1 + n + i]]])
            )
        env = names[1 + 2 * n :]
        rows += [W.HBox([self.sliders[env[0]], self.sliders[env[1]]])]
        rows += [W.HBox([self.sliders[env[2]], self.sliders[env[3]]])]
        rows += [self.curve]
        rows += [
            W.HBox([W.Label("A: patch"), self.player]),
            self.reference_row,
            self.distances_html,
            self.image,
            W.HBox([self.patch_path, self.load_button, self.patch_upload]),
            W.HBox([self.reference_path, self.reference_button, self.reference_upload]),
            W.HBox([self.name, self.overwrite]),
            W.HBox(
                [self.save_patch_button, self.save_wav_button, self.save_syx_button]
            ),
            self.status,
        ]
        super().__init__(rows)
        self.add_class(EXPLORER_CLASS)
        self.update()

    # ----------------------------------------------------------------- the patch
    def current_patch(self) -> Patch:
        """The patch the controls describe (validated)."""
        vector = [self.sliders[name].value for name in P.TARGET_NAMES]
        return patch_from_vector(
            vector,
            algorithm=self.algorithm.value,
            level=self.level,
            curve=self.curve.value,
        )

    def set_patch(self, patch: Patch | dict) -> Patch:
        """Show ``patch`` on the controls and render it once.

        Values outside a slider's range are clamped onto it (the status says which).

        Returns:
            The patch the controls now describe.
        """
        p = patch_from_dict(patch)
        clamped = []
        self._updating = True
        try:
            self.algorithm.value = p.algorithm
            self.curve.value = p.envelope.curve
            self._fit_release_range(p.envelope.curve)
            for name, v in zip(P.TARGET_NAMES, p.to_vector(), strict=True):
                s = self.sliders[name]
                s.value = float(v)
                if not math.isclose(s.value, float(v), rel_tol=1e-3, abs_tol=1e-9):
                    clamped.append(name)
            self.level = float(p.level)
            self._sync_midi()
        finally:
            self._updating = False
        self.update()
        self.status.value = (
            f"clamped onto the sliders: {', '.join(clamped)}" if clamped else ""
        )
        return self.current_patch()

    def randomize(self, seed: int | None = None) -> Patch:
        """A patch from the paper's sampler (note 0 of the dataset seeded ``seed``,
        :func:`fmlib.datasets.sampler.sample_note`), keeping the selected algorithm
        and envelope curve.

        Args:
            seed: An integer >= 0; ``None`` takes the seed field and advances it, so
                that each click gives a new patch and a seed reproduces one.
        """
        from fmlib.datasets.sampler import sample_note

        if seed is None:
            seed = int(self.seed.value)
            self.seed.value = min(seed + 1, self.seed.max)
        vector = sample_note(int(seed), 0)
        patch = patch_from_vector(
            vector, algorithm=self.algorithm.value, curve=self.curve.value
        )
        self.set_patch(patch)
        return self.current_patch()

    def load_patch_bytes(self, data: bytes, *, name: str = "patch") -> Patch:
        """Load a patch JSON document or a DX7 ``.syx`` dump (first voice)."""
        return self.set_patch(patch_from_bytes(data, name))

    def load_patch_file(self, path: str | os.PathLike) -> Patch:
        """Load a patch JSON file or a DX7 ``.syx`` file (first voice)."""
        return self.load_patch_bytes(
            _read_input(path, "patch file"), name=str(path).strip()
        )

    # ----------------------------------------------------------------- reference
    def load_reference(self, data: bytes, *, name: str = "reference") -> np.ndarray:
        """Decode an audio file's bytes (any rate, mono or stereo) as the reference
        B; see :meth:`set_reference`."""
        audio, sr = decode_audio(data, name)
        return self.set_reference(audio, sample_rate=sr, name=name)

    def load_reference_file(self, path: str | os.PathLike) -> np.ndarray:
        """Load an audio file as the reference B."""
        name = str(path).strip()
        return self.load_reference(_read_input(path, "audio file"), name=name)

    def set_reference(
        self, audio: np.ndarray, *, sample_rate: int = P.SAMPLE_RATE, name: str = ""
    ) -> np.ndarray:
        """Use ``audio`` as the reference B: mixed to mono, resampled to 16 kHz and
        started at its onset (:func:`fmlib.audio.analysis.prepare_audio`), then cut
        or zero-padded to the explorer's note length; the distances are shown from
        now on.

        Returns:
            The reference, float32 of shape (duration_s * 16000,).
        """
        from fmlib.audio.analysis import prepare_audio

        x, _ = prepare_audio(audio, sample_rate)
        self.reference = _fit_length(x, self.audio.size)
        self.reference_name = Path(name).name if name else "reference"
        self._reference_gain = None  # a new reference is always sent
        self._reference_spectra = _Spectra(self.reference)
        self._refresh_players()
        self._refresh_distances()
        return self.reference

    def clear_reference(self) -> None:
        """Forget the reference."""
        self.reference, self._reference_spectra, self.distances = None, None, None
        self.reference_row.children = ()
        self.distances_html.value = "<i>no reference loaded</i>"
        self._refresh_players()

    # ----------------------------------------------------------------- rendering
    def update(self) -> None:
        """Render the current patch and refresh the players, distances and plots."""
        patch = self.current_patch()
        self.audio = render(
            patch, duration_s=self.duration_s, note_off_s=self.note_off_s
        )
        self._refresh_players()
        self._refresh_distances()
        midi = hz_to_midi(patch.carrier_hz)
        title = (
            f"{patch.algorithm}, carrier {patch.carrier_hz:.1f} Hz (MIDI {midi:.2f})"
        )
        self.image.value = self._plot.png(self.audio, title)

    def _refresh_players(self) -> None:
        signals = [self.audio] + (
            [self.reference] if self.reference is not None else []
        )
        gain = playback_gain(*signals)
        self.player.value = audio_bytes(self.audio, gain=gain)
        if self.reference is not None:
            # resent only when the shared gain changes (128 KB per 4 s note)
            if gain != self._reference_gain or not self.reference_row.children:
                self.player_reference.value = audio_bytes(self.reference, gain=gain)
                self._reference_gain = gain
            if not self.reference_row.children:
                self.reference_row.children = (
                    W.Label("B: reference"),
                    self.player_reference,
                )

    def _refresh_distances(self) -> None:
        if self._reference_spectra is None:
            return
        self.distances = _Spectra(self.audio).distances(self._reference_spectra)
        caption = f"distances A (patch) to B ({self.reference_name}); smaller is closer"
        self.distances_html.value = _distance_table({"A vs B": self.distances}, caption)

    # ----------------------------------------------------------------- events
    def _fit_release_range(self, curve: str) -> None:
        """Give the release slider the range of ``curve`` (:func:`slider_range`)."""
        s = self.sliders["release_s"]
        _, high = slider_range("release_s", curve=curve)
        if high >= s.max:
            s.max = high
        else:
            s.value = min(s.value, high)
            s.max = high

    def _on_change(self, change) -> None:
        if self._updating:
            return
        if change.get("owner") is self.curve:
            self._updating = True
            try:
                self._fit_release_range(self.curve.value)
            finally:
                self._updating = False
        if self.snap.value:
            self._updating = True
            try:
                for name, s in self.sliders.items():
                    if name.startswith("ratio_"):
                        s.value = _nearest_ratio(s.value)
            finally:
                self._updating = False
        self.update()

    def _sync_midi(self) -> None:
        midi = round(hz_to_midi(self.sliders["carrier_hz"].value), 2)
        self.midi.value = min(max(midi, self.midi.min), self.midi.max)

    def _carrier_to_midi(self, change) -> None:
        if self._updating:
            return
        self._updating = True
        try:
            self._sync_midi()
        finally:
            self._updating = False

    def _midi_to_carrier(self, change) -> None:
        if self._updating:
            return
        hz = midi_to_hz(change["new"])
        self._updating = True
        try:
            self.sliders["carrier_hz"].value = hz
        finally:
            self._updating = False
        self.update()

    def _random_clicked(self) -> str:
        seed = int(self.seed.value)
        self.randomize()
        return f"random patch, seed {seed}"

    def _load_clicked(self) -> str:
        self.load_patch_file(self.patch_path.value)
        loaded = f"loaded {self.patch_path.value.strip()}"
        return loaded + (f" ({self.status.value})" if self.status.value else "")

    def _reference_clicked(self) -> str:
        self.load_reference_file(self.reference_path.value)
        return f"reference {self.reference_path.value.strip()}"

    def _on_patch_upload(self, change) -> None:
        for name, data in _uploaded_files(change):
            self._report(lambda d=data, n=name: self._loaded(n, d))

    def _loaded(self, name: str, data: bytes) -> str:
        self.load_patch_bytes(data, name=name)
        return f"loaded {name}" + (
            f" ({self.status.value})" if self.status.value else ""
        )

    def _on_reference_upload(self, change) -> None:
        for name, data in _uploaded_files(change):
            self._report(lambda d=data, n=name: self._referenced(n, d))

    def _referenced(self, name: str, data: bytes) -> str:
        self.load_reference(data, name=name)
        return f"reference {name}"

    # ----------------------------------------------------------------- saving
    def _out_path(self, suffix: str) -> Path:
        """``<out_dir>/<name><suffix>``, refused when it exists and "overwrite" is
        not ticked."""
        from fmlib import files

        path = self.out_dir / f"{_checked_stem(self.name.value)}{suffix}"
        files.check_output(path, suffixes=(suffix,))
        if path.exists() and not self.overwrite.value:
            raise InputError(
                f"{path}: exists; tick 'overwrite' to replace it, or change the name"
            )
        return path

    def save_patch(self) -> Path:
        """Write the current patch to ``<out_dir>/<name>.json`` (atomically).

        Raises:
            InputError: the file exists and "overwrite" is not ticked, or a bad name.
        """
        return save_patch(self.current_patch(), self._out_path(".json"))

    def save_wav(self) -> Path:
        """Write the current note to ``<out_dir>/<name>.wav`` (16 kHz; 16-bit, or
        32-bit float when the note peaks above 1.0; never normalised)."""
        return write_wav(self._out_path(".wav"), self.audio, P.SAMPLE_RATE)

    def export_syx(self) -> Path:
        """Write the current patch as a DX7 single-voice sysex dump (163 bytes) to
        ``<out_dir>/<name>.syx`` (:func:`fmlib.synth.dx7.patch_to_voice`; the voice name
        holds the first 6 characters of the file name and the key to play).

        Raises:
            InputError: not algorithm ``dx7_18``, the file exists and "overwrite" is
                not ticked, or a bad name.
        """
        from fmlib import files
        from fmlib.synth import dx7

        path = self._out_path(".syx")
        voice, _ = dx7.patch_to_voice(self.current_patch(), name=path.stem[:6])
        return files.write_bytes(path, dx7.voice_sysex(voice))

    def _saved(self, action):
        return lambda: f"saved {action()}"

    def _report(self, action) -> None:
        try:
            self.status.value = action()
        except (InputError, MissingFileError, OSError) as exc:
            self.status.value = f"error: {exc}"


def synth_explorer(
    *,
    patch: Patch | dict | None = None,
    out_dir: str | os.PathLike = PATCHES_DIR,
    duration_s: float = P.DURATION_S,
    note_off_s: float = P.NOTE_OFF_S,
) -> SynthExplorer:
    """Build the interactive synthesizer explorer (display it as a cell's last value).

    Args:
        patch: Starting patch (default :data:`DEFAULT_PATCH`); values outside the
            sliders' ranges are clamped onto them.
        out_dir: Where the save buttons write (default
            :data:`fmlib.paths.PATCHES_DIR`).
        duration_s, note_off_s: Note length and note-off time, s.
    """
    return SynthExplorer(
        patch=patch, out_dir=out_dir, duration_s=duration_s, note_off_s=note_off_s
    )


def decode_audio(data: bytes, name: str = "upload") -> tuple[np.ndarray, int]:
    """Decode an uploaded audio file.

    Returns:
        (audio, sample_rate): float32 of shape (n, channels), Hz.

    Raises:
        InputError: not a readable audio file, or empty.
    """
    import soundfile as sf

    try:
        audio, sr = sf.read(io.BytesIO(bytes(data)), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise InputError(f"{name}: not a readable audio file ({exc})") from None
    if audio.shape[0] == 0:
        raise InputError(f"{name}: the audio file is empty (0 samples)")
    return audio, int(sr)


# --------------------------------------------------------------------------- panel
class ResynthesisPanel(W.VBox):
    """Upload a sound, get a patch, compare original and re-synthesis, with the
    distances of the re-synthesis and of the baselines.

    Attributes:
        estimator: Anything with ``predict_patches(audio (k, 64000)) -> [Patch]``.
        upload: ``ipywidgets.FileUpload`` accepting one audio file.
        player_original, player_resynthesis: A/B players (WAV bytes, 16 kHz, one
            shared playback gain), shown in ``players`` once a sound is loaded (an
            empty player makes Chromium log a failed media request).
        image: Spectrograms of both (PNG), in ``players`` too.
        distances_html: FFT, STFT and log-mel distances to the original of the
            re-synthesis and of the baselines (:mod:`fmlib.evaluation.baselines`).
        distances: The same, ``{row: {metric: value}}`` (empty before).
        f0_hz: The estimated f0 the pitch baselines use (``None`` before).
        patch_text: The patch as JSON.
        edit_button: "edit in explorer": sends the patch (and the original as the
            reference) to :attr:`explorer`, building one below the panel if needed.
        explorer: The :class:`SynthExplorer` receiving the patch (``None`` before).
        status: What happened (the preparation steps, or the error).
        patch: The last :class:`~fmlib.synth.patch.Patch` (``None`` before).
        original, resynthesis: float32 arrays of shape (64000,) (empty before).
    """

    def __init__(
        self,
        predictor=None,
        *,
        out_dir: str | os.PathLike = PATCHES_DIR,
        explorer: SynthExplorer | None = None,
    ) -> None:
        if predictor is None:
            from fmlib.estimate.estimators import MatchEstimator
            from fmlib.estimate.match import DEFAULT_BUDGET

            predictor = MatchEstimator(DEFAULT_BUDGET, 0)
        self.predictor = predictor
        self.estimator = predictor
        self.out_dir = Path(out_dir)
        self.explorer = explorer
        self.patch: Patch | None = None
        self.f0_hz: float | None = None
        self.distances: dict[str, dict[str, float]] = {}
        self.original = np.zeros(0, dtype=np.float32)
        self.resynthesis = np.zeros(0, dtype=np.float32)
        self.upload = W.FileUpload(accept=".wav,.flac,.ogg,audio/*", multiple=False)
        self.player_original = W.Audio(format="wav", autoplay=False)
        self.player_resynthesis = W.Audio(format="wav", autoplay=False)
        self.players = W.VBox([])
        self.image = W.Image(format="png")
        self.distances_html = W.HTML(value="")
        self.patch_text = W.Textarea(layout=W.Layout(width="520px", height="160px"))
        self.name = W.Text(value="resynthesis", description="file name")
        self.overwrite = W.Checkbox(value=False, description="overwrite", indent=False)
        self.save_button = W.Button(description="save patch + WAV", icon="save")
        self.edit_button = W.Button(description="edit in explorer", icon="sliders")
        self.explorer_box = W.VBox([])
        method = getattr(predictor, "name", type(predictor).__name__)
        self.status = W.Label(
            value=f"upload a sound (any rate, mono or stereo); estimator: {method}"
        )
        self.upload.observe(self._on_upload, names="value")
        self.save_button.on_click(lambda _: self._save_clicked())
        self.edit_button.on_click(lambda _: self._edit_clicked())
        super().__init__(
            [
                self.upload,
                self.players,
                self.distances_html,
                self.patch_text,
                W.HBox([self.name, self.overwrite, self.save_button, self.edit_button]),
                self.status,
                self.explorer_box,
            ]
        )
        self.add_class(PANEL_CLASS)

    def _on_upload(self, change) -> None:
        for name, data in _uploaded_files(change):
            try:
                self.load_bytes(data, name=name)
            except InputError as exc:
                self.status.value = f"error: {exc}"

    def load_bytes(self, data: bytes, *, name: str = "upload") -> Patch:
        """Decode, prepare (16 kHz mono, from the onset, 4 s), estimate, render,
        compare and show one sound.

        Raises:
            InputError: not audio, empty or silent (as decided by
                :func:`fmlib.audio.analysis.prepare_audio`).
        """
        from fmlib.audio.analysis import prepare_audio

        audio, sr = decode_audio(data, name)
        x, changes = prepare_audio(audio, sr)
        patch = self.predictor.predict_patches(x[None, :])[0]
        self.original = np.asarray(x, dtype=np.float32)
        self.resynthesis = render(patch)
        self.patch = patch
        gain = playback_gain(self.original, self.resynthesis)
        self.player_original.value = audio_bytes(self.original, gain=gain)
        self.player_resynthesis.value = audio_bytes(self.resynthesis, gain=gain)
        self.players.children = (
            W.HBox([W.Label("A: original"), self.player_original]),
            W.HBox([W.Label("B: re-synthesis"), self.player_resynthesis]),
            self.image,
        )
        self.patch_text.value = json.dumps(patch.to_dict(), indent=2)
        self.image.value = _comparison_png(self.original, self.resynthesis, name)
        self._compare_to_baselines()
        steps = "; ".join(changes) if changes else "no changes needed"
        self.status.value = f"{name}: {steps}"
        return patch

    def _compare_to_baselines(self) -> None:
        """Distances to the original of the re-synthesis and of the baselines; the
        pitch baselines use the estimated f0 (an upload has no pitch label)."""
        from fmlib.audio.analysis import estimate_f0
        from fmlib.evaluation.baselines import baselines

        self.f0_hz = float(estimate_f0(self.original).f0_hz)
        pitch = hz_to_midi(self.f0_hz)
        ref = _Spectra(self.original)
        base = baselines(self.original, pitch)
        labels = {
            "sine_440": "baseline: 440 Hz sine",
            "sine_pitch": "baseline: sine at the estimated f0",
            "sine_pitch_env": "baseline: that sine with the note's envelope",
        }
        rows = {"re-synthesis": _Spectra(self.resynthesis).distances(ref)}
        for key, signal in base.items():
            rows[labels[key]] = _Spectra(signal).distances(ref)
        self.distances = rows
        caption = (
            f"distances to the original (smaller is closer); the pitch baselines "
            f"use the estimated f0 {self.f0_hz:.1f} Hz (MIDI {pitch:.2f}), since an "
            "upload has no pitch label"
        )
        self.distances_html.value = _distance_table(rows, caption)

    def save(self) -> tuple[Path, Path]:
        """Write the patch JSON and the re-synthesis WAV into ``out_dir``.

        Raises:
            InputError: nothing to save yet, a bad name, or a file exists and
                "overwrite" is not ticked (nothing is written then).
        """
        from fmlib import files

        if self.patch is None:
            raise InputError("nothing to save yet: upload a sound first")
        stem = _checked_stem(self.name.value)
        paths = [self.out_dir / f"{stem}.json", self.out_dir / f"{stem}.wav"]
        for p in paths:
            files.check_output(p)
            if p.exists() and not self.overwrite.value:
                raise InputError(
                    f"{p}: exists; tick 'overwrite' to replace it, or change the name"
                )
        json_path = save_patch(self.patch, paths[0])
        wav_path = write_wav(paths[1], self.resynthesis, P.SAMPLE_RATE)
        return json_path, wav_path

    def edit_in_explorer(self) -> SynthExplorer:
        """Send the patch to :attr:`explorer` (built below the panel when there is
        none), with the original as its reference B, so the patch can be refined by
        ear against the sound it came from.

        Raises:
            InputError: nothing to edit yet.
        """
        if self.patch is None:
            raise InputError("nothing to edit yet: upload a sound first")
        if self.explorer is None:
            self.explorer = SynthExplorer(patch=self.patch, out_dir=self.out_dir)
            self.explorer_box.children = (self.explorer,)
        else:
            self.explorer.set_patch(self.patch)
        self.explorer.set_reference(self.original, name="original")
        return self.explorer

    def _save_clicked(self) -> None:
        try:
            paths = self.save()
            self.status.value = "saved " + ", ".join(str(p) for p in paths)
        except (InputError, MissingFileError, OSError) as exc:
            self.status.value = f"error: {exc}"

    def _edit_clicked(self) -> None:
        try:
            self.edit_in_explorer()
            self.status.value = "sent to the explorer below"
        except InputError as exc:
            self.status.value = f"error: {exc}"


def _comparison_png(original: np.ndarray, resynthesis: np.ndarray, title: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from fmlib.notebook.plots import plot_spectrogram

    fig = Figure(figsize=(9, 3.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, audio, label in zip(
        axes, (original, resynthesis), ("original", "re-synthesis"), strict=True
    ):
        plot_spectrogram(ax, audio)
        ax.set_title(f"{title}: {label}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


def resynthesis_panel(
    predictor=None,
    *,
    out_dir: str | os.PathLike = PATCHES_DIR,
    explorer: SynthExplorer | None = None,
) -> ResynthesisPanel:
    """Build the "re-synthesise your own sound" panel.

    Args:
        predictor: An estimator with ``predict_patches(audio (k, 64000)) ->
            list[Patch]``: a CNN (:func:`fmlib.estimate.predict.load_predictor`) or
            :class:`fmlib.estimate.estimators.MatchEstimator`. ``None`` (no CNN model at
            hand) uses ``MatchEstimator`` with its default budget and seed 0.
        out_dir: Where the save button writes (default :data:`fmlib.paths.PATCHES_DIR`).
        explorer: The explorer "edit in explorer" sends the patch to (default: one
            built below the panel on the first click).
    """
    return ResynthesisPanel(predictor, out_dir=out_dir, explorer=explorer)
