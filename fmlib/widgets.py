"""The notebooks' interactive widgets (ipywidgets): the synthesizer explorer and the
"re-synthesise your own sound" panel.

Both are built by a function that returns the widget object, so a test can construct
one, set slider values or feed it bytes, and read what it rendered without a browser.
Every slider's range and scale comes from :data:`fmlib.params.PARAMS`; nothing here
repeats a limit. Audio is played through ``ipywidgets.Audio`` holding the WAV bytes
that ``IPython.display.Audio`` encodes (16 kHz, not normalised, so loudness is
comparable between players).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Audio

from fmlib import params as P
from fmlib.algorithms import ALGORITHMS, DEFAULT_ALGORITHM
from fmlib.audio_io import write_wav
from fmlib.errors import InputError, MissingFileError
from fmlib.patch import Patch, patch_from_dict, patch_from_vector, save_patch
from fmlib.paths import PATCHES_DIR
from fmlib.plots import COLORS, plot_spectrogram, plot_waveform
from fmlib.synth import render

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

_FILE_STEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def audio_bytes(audio: np.ndarray, *, sample_rate: int = P.SAMPLE_RATE) -> bytes:
    """WAV bytes for a player: (n,) float audio, clipped to [-1, 1], not normalised."""
    return player(audio, sample_rate=sample_rate).data


def player(audio: np.ndarray, *, sample_rate: int = P.SAMPLE_RATE) -> Audio:
    """An IPython audio player for (n,) float audio: clipped to [-1, 1], not
    normalised, so that players of different notes compare in loudness."""
    y = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
    return Audio(y, rate=sample_rate, normalize=False)


def _slider(name: str, value: float) -> W.Widget:
    """A slider over the paper's range of ``name``, logarithmic when its scale is."""
    spec = P.PARAMS[name]
    common = {
        "description": name,
        "tooltip": f"{spec.description} ({spec.unit})",
        "continuous_update": False,
        "style": {"description_width": "80px"},
        "layout": W.Layout(width="360px"),
    }
    value = min(max(value, spec.low), spec.high)
    if spec.scale == "log":
        return W.FloatLogSlider(
            value=value,
            base=10,
            min=math.log10(spec.low),
            max=math.log10(spec.high),
            step=0.001,
            readout_format=".4g",
            **common,
        )
    return W.FloatSlider(
        value=value,
        min=spec.low,
        max=spec.high,
        step=(spec.high - spec.low) / 1000,
        readout_format=".3g",
        **common,
    )


def _figure_png(audio: np.ndarray, title: str, *, max_hz: float | None = None) -> bytes:
    """Waveform (whole note) over a spectrogram, as PNG bytes."""
    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(7, 4.5), height_ratios=[1, 2])
    plot_waveform(ax0, audio, color=COLORS["carrier"])
    ax0.set_title(title)
    plot_spectrogram(ax1, audio, max_hz=max_hz)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def _nearest_ratio(value: float) -> float:
    return min(P.DISCRETE_RATIOS, key=lambda r: abs(math.log(r / value)))


def _checked_stem(name: str) -> str:
    stem = name.strip()
    if not _FILE_STEM.match(stem):
        raise InputError(
            f"file name {name!r}: use letters, digits, '_', '.', '-' (no folders)"
        )
    return stem


class SynthExplorer(W.VBox):
    """Sliders for every patch parameter, a player, and a live waveform/spectrogram.

    Attributes:
        sliders: flat parameter name (:data:`fmlib.params.TARGET_NAMES`) -> slider.
        algorithm: Dropdown over :data:`fmlib.algorithms.ALGORITHMS`.
        snap: Toggle that snaps ratio sliders to :data:`fmlib.params.DISCRETE_RATIOS`.
        name: Text box with the file stem used by the save buttons.
        player: ``ipywidgets.Audio`` with the current note as WAV bytes.
        image: ``ipywidgets.Image`` with the waveform and spectrogram (PNG).
        status: Label with the last action or error.
        audio: The current note, float32 of shape (duration_s * 16000,).
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
        self.audio = np.zeros(0, dtype=np.float32)
        self._updating = False
        self.algorithm = W.Dropdown(
            options=sorted(ALGORITHMS), value=start.algorithm, description="algorithm"
        )
        self.sliders = {
            name: _slider(name, float(v))
            for name, v in zip(P.TARGET_NAMES, start.to_vector(), strict=True)
        }
        self.snap = W.ToggleButton(
            value=False, description="snap ratios", tooltip="to the discrete ratio set"
        )
        self.name = W.Text(value="my_patch", description="file name")
        self.save_patch_button = W.Button(description="save patch JSON", icon="save")
        self.save_wav_button = W.Button(description="save WAV", icon="save")
        self.status = W.Label(value="")
        self.player = W.Audio(format="wav", autoplay=False, controls=True)
        self.image = W.Image(format="png")

        for w in (self.algorithm, self.snap, *self.sliders.values()):
            w.observe(self._on_change, names="value")
        self.save_patch_button.on_click(lambda _: self._report(self.save_patch))
        self.save_wav_button.on_click(lambda _: self._report(self.save_wav))

        n = P.N_MODULATORS
        names = list(P.TARGET_NAMES)
        rows = [W.HBox([self.algorithm, self.sliders["carrier_hz"], self.snap])]
        for i in range(n):
            rows.append(
                W.HBox([self.sliders[names[1 + i]], self.sliders[names[1 + n + i]]])
            )
        env = names[1 + 2 * n :]
        rows += [W.HBox([self.sliders[env[0]], self.sliders[env[1]]])]
        rows += [W.HBox([self.sliders[env[2]], self.sliders[env[3]]])]
        rows += [W.HBox([self.player]), self.image]
        rows += [W.HBox([self.name, self.save_patch_button, self.save_wav_button])]
        rows += [self.status]
        super().__init__(rows)
        self.update()

    def current_patch(self) -> Patch:
        """The patch the controls describe (validated)."""
        vector = [self.sliders[name].value for name in P.TARGET_NAMES]
        return patch_from_vector(vector, algorithm=self.algorithm.value)

    def _on_change(self, change) -> None:
        if self._updating:
            return
        if self.snap.value:
            self._updating = True
            try:
                for name, s in self.sliders.items():
                    if name.startswith("ratio_"):
                        s.value = _nearest_ratio(s.value)
            finally:
                self._updating = False
        self.update()

    def update(self) -> None:
        """Render the current patch and refresh the player and the plots."""
        patch = self.current_patch()
        self.audio = render(
            patch, duration_s=self.duration_s, note_off_s=self.note_off_s
        )
        self.player.value = audio_bytes(self.audio)
        title = f"{patch.algorithm}, carrier {patch.carrier_hz:.1f} Hz"
        self.image.value = _figure_png(self.audio, title)

    def save_patch(self) -> Path:
        """Write the current patch to ``<out_dir>/<name>.json`` (atomically)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"{_checked_stem(self.name.value)}.json"
        return save_patch(self.current_patch(), path)

    def save_wav(self) -> Path:
        """Write the current note to ``<out_dir>/<name>.wav`` (16 kHz, 16-bit)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"{_checked_stem(self.name.value)}.wav"
        return write_wav(path, self.audio, P.SAMPLE_RATE)

    def _report(self, action) -> None:
        try:
            self.status.value = f"saved {action()}"
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
            paper's ranges are clamped onto the sliders.
        out_dir: Where "save patch JSON" and "save WAV" write (default
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


class ResynthesisPanel(W.VBox):
    """Upload a sound, get the predicted patch, and compare original and re-synthesis.

    Attributes:
        upload: ``ipywidgets.FileUpload`` accepting one audio file.
        player_original, player_resynthesis: A/B players (WAV bytes, 16 kHz).
        image: Spectrograms of both (PNG).
        patch_text: The predicted patch as JSON.
        status: What happened (the preparation steps, or the error).
        patch: The last predicted :class:`~fmlib.patch.Patch` (``None`` before).
        original, resynthesis: float32 arrays of shape (64000,) (empty before).
    """

    def __init__(self, predictor, *, out_dir: str | os.PathLike = PATCHES_DIR) -> None:
        self.predictor = predictor
        self.out_dir = Path(out_dir)
        self.patch: Patch | None = None
        self.original = np.zeros(0, dtype=np.float32)
        self.resynthesis = np.zeros(0, dtype=np.float32)
        self.upload = W.FileUpload(accept=".wav,audio/*", multiple=False)
        self.player_original = W.Audio(format="wav", autoplay=False)
        self.player_resynthesis = W.Audio(format="wav", autoplay=False)
        self.image = W.Image(format="png")
        self.patch_text = W.Textarea(layout=W.Layout(width="520px", height="160px"))
        self.name = W.Text(value="resynthesis", description="file name")
        self.save_button = W.Button(description="save patch + WAV", icon="save")
        self.status = W.Label(value="upload a WAV file (any rate, mono or stereo)")
        self.upload.observe(self._on_upload, names="value")
        self.save_button.on_click(lambda _: self._save_clicked())
        super().__init__(
            [
                self.upload,
                W.HBox([W.Label("A: original"), self.player_original]),
                W.HBox([W.Label("B: re-synthesis"), self.player_resynthesis]),
                self.image,
                self.patch_text,
                W.HBox([self.name, self.save_button]),
                self.status,
            ]
        )

    def _on_upload(self, change) -> None:
        files = change["new"]
        if not files:
            return
        item = files[0]
        try:
            self.load_bytes(item["content"], name=item.get("name", "upload"))
        except InputError as exc:
            self.status.value = f"error: {exc}"

    def load_bytes(self, data: bytes, *, name: str = "upload") -> Patch:
        """Decode, prepare (16 kHz mono, 4 s), predict, render and show one sound.

        Raises:
            InputError: not audio, empty or silent (as decided by
                :func:`fmlib.predict.prepare_audio`).
        """
        from fmlib.predict import prepare_audio

        audio, sr = decode_audio(data, name)
        x, changes = prepare_audio(audio, sr)
        patch = self.predictor.predict_patches(x[None, :])[0]
        self.original = np.asarray(x, dtype=np.float32)
        self.resynthesis = render(patch)
        self.patch = patch
        self.player_original.value = audio_bytes(self.original)
        self.player_resynthesis.value = audio_bytes(self.resynthesis)
        self.patch_text.value = json.dumps(patch.to_dict(), indent=2)
        self.image.value = _comparison_png(self.original, self.resynthesis, name)
        steps = "; ".join(changes) if changes else "no changes needed"
        self.status.value = f"{name}: {steps}"
        return patch

    def save(self) -> tuple[Path, Path]:
        """Write the predicted patch JSON and the re-synthesis WAV into ``out_dir``."""
        if self.patch is None:
            raise InputError("nothing to save yet: upload a WAV file first")
        stem = _checked_stem(self.name.value)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        json_path = save_patch(self.patch, self.out_dir / f"{stem}.json")
        wav_path = write_wav(
            self.out_dir / f"{stem}.wav", self.resynthesis, P.SAMPLE_RATE
        )
        return json_path, wav_path

    def _save_clicked(self) -> None:
        try:
            paths = self.save()
            self.status.value = "saved " + ", ".join(str(p) for p in paths)
        except (InputError, MissingFileError, OSError) as exc:
            self.status.value = f"error: {exc}"


def _comparison_png(original: np.ndarray, resynthesis: np.ndarray, title: str) -> bytes:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    for ax, audio, label in zip(
        axes, (original, resynthesis), ("original", "re-synthesis"), strict=True
    ):
        plot_spectrogram(ax, audio)
        ax.set_title(f"{title}: {label}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def resynthesis_panel(
    predictor, *, out_dir: str | os.PathLike = PATCHES_DIR
) -> ResynthesisPanel:
    """Build the "re-synthesise your own sound" panel.

    Args:
        predictor: Anything with ``predict_patches(audio (n, 64000)) -> list[Patch]``,
            normally :func:`fmlib.predict.load_predictor`'s result.
        out_dir: Where the save button writes (default :data:`fmlib.paths.PATCHES_DIR`).
    """
    return ResynthesisPanel(predictor, out_dir=out_dir)
