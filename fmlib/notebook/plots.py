"""Figure styling, the one figure save helper, and the plots the notebooks share.

Every figure of the project goes through :func:`save_figure`, which applies no
styling of its own: styling comes from :data:`STYLE`, installed by
:func:`use_style` (the notebooks call it once). Plot helpers draw into a given
``matplotlib.axes.Axes`` and return it, so notebooks compose them freely.

All audio arrays are float32 or float64 of shape (n,) at ``sample_rate`` Hz
(16 kHz in this project); amplitudes are linear with a nominal range [-1, 1].

Why one module of over 600 lines: every figure of the project is drawn once,
here, with one style; notebooks and commands call these functions.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from fmlib.errors import InputError
from fmlib.paths import INTERACTIVE_DIR
from fmlib.synth import params as P
from fmlib.synth.algorithms import CARRIER, get_algorithm
from fmlib.synth.engine import adsr_envelope

#: Matplotlib settings shared by every figure of the project.
STYLE: dict[str, object] = {
    "figure.figsize": (7.0, 3.6),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "image.cmap": "magma",
}

#: Colours with a fixed meaning across figures.
COLORS = {
    "original": "#1f77b4",
    "resynthesis": "#d62728",
    "baseline": "#7f7f7f",
    "train": "#1f77b4",
    "validation": "#ff7f0e",
    "carrier": "#d62728",
    "modulator": "#1f77b4",
    "theory": "#2ca02c",
}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def use_style() -> None:
    """Install :data:`STYLE` into matplotlib's global ``rcParams``."""
    plt.rcParams.update(STYLE)


def save_figure(
    fig,
    name: str,
    *,
    out_dir: str | os.PathLike | None = None,
    show: bool = True,
) -> Path:
    """Save ``fig`` as ``<out_dir>/<name>.png`` atomically, show it, and close it.

    Args:
        fig: A matplotlib Figure.
        name: File stem such as ``"fig04_adsr"`` (letters, digits, ``_ . -``; a
            trailing ``.png`` is accepted). Names are stable so that the README can
            link to them.
        out_dir: Destination folder, created if needed (default
            ``data/interactive/figures``, never the committed ``figures/``; the
            notebooks pass their output folder, which only the paper-profile runner
            points at the committed one).
        show: In a Jupyter kernel, display the figure before closing it (closing
            keeps memory flat over many figures and avoids showing it twice).

    Returns:
        The path of the PNG written.

    Raises:
        InputError: ``name`` is not a plain file stem.
    """
    stem = name[:-4] if name.endswith(".png") else name
    if not _NAME.match(stem):
        raise InputError(
            f"figure name {name!r}: use letters, digits, '_', '.', '-' (no folders)"
        )
    from fmlib import files

    folder = INTERACTIVE_DIR / "figures" if out_dir is None else Path(out_dir)
    path = folder / f"{stem}.png"
    try:
        with files.atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png")
        if show and _in_kernel():
            from IPython.display import display

            display(fig)
    finally:
        plt.close(fig)
    return path


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def plot_waveform(
    ax,
    audio: np.ndarray,
    *,
    sample_rate: int = P.SAMPLE_RATE,
    start_s: float = 0.0,
    stop_s: float | None = None,
    color: str | None = None,
    label: str | None = None,
):
    """Amplitude against time (s) for ``audio[start_s:stop_s]``.

    Args:
        ax: Axes to draw into.
        audio: shape (n,), float, nominal range [-1, 1].
        sample_rate: Hz.
        start_s, stop_s: Time window in seconds (``None``: to the end).
    """
    audio = np.asarray(audio).reshape(-1)
    i0 = max(0, int(round(start_s * sample_rate)))
    i1 = (
        audio.size
        if stop_s is None
        else min(audio.size, int(round(stop_s * sample_rate)))
    )
    t = np.arange(i0, i1) / sample_rate
    ax.plot(t, audio[i0:i1], lw=0.8, color=color, label=label)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("amplitude")
    return ax


def magnitude_spectrum(
    audio: np.ndarray, *, sample_rate: int = P.SAMPLE_RATE
) -> tuple[np.ndarray, np.ndarray]:
    """Hann-windowed amplitude spectrum, scaled so a sine of amplitude A peaks at A.

    Args:
        audio: shape (n,), float.
        sample_rate: Hz.

    Returns:
        (freqs_hz, amplitude): both float64 of shape (n // 2 + 1,); the bin spacing is
        ``sample_rate / n`` Hz.
    """
    audio = np.asarray(audio, dtype=np.float64).reshape(-1)
    window = np.hanning(audio.size)
    spectrum = np.abs(np.fft.rfft(audio * window)) * (2.0 / window.sum())
    return np.fft.rfftfreq(audio.size, 1.0 / sample_rate), spectrum


def plot_spectrum(
    ax,
    audio: np.ndarray,
    *,
    sample_rate: int = P.SAMPLE_RATE,
    max_hz: float | None = None,
    db: bool = True,
    color: str | None = None,
    label: str | None = None,
):
    """Amplitude spectrum of the whole signal (see :func:`magnitude_spectrum`).

    Args:
        db: Plot 20 log10(amplitude) in dB (floor -120 dB) instead of linear amplitude.
        max_hz: Upper frequency limit of the plot, Hz (``None``: Nyquist).
    """
    f, a = magnitude_spectrum(audio, sample_rate=sample_rate)
    y = 20 * np.log10(np.maximum(a, 1e-6)) if db else a
    ax.plot(f, y, lw=0.8, color=color, label=label)
    ax.set_xlim(0, max_hz or sample_rate / 2)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("amplitude (dB)" if db else "amplitude")
    if db:
        ax.set_ylim(bottom=-100)
    return ax


def plot_spectrogram(
    ax,
    audio: np.ndarray,
    *,
    sample_rate: int = P.SAMPLE_RATE,
    n_fft: int = 1024,
    hop_length: int = 256,
    max_hz: float | None = None,
    mel: bool = False,
    colorbar: bool = False,
):
    """Log-magnitude spectrogram (dB re. the signal's maximum, floor -80 dB).

    Args:
        audio: shape (n,), float.
        n_fft, hop_length: STFT size and hop in samples (1024 / 256 at 16 kHz: 64 ms
            frames every 16 ms, fine enough to see the envelope and the partials).
        max_hz: Upper frequency limit shown, Hz (``None``: Nyquist).
        mel: Show a 128-band mel spectrogram instead of linear frequency bins.
        colorbar: Add a dB colour bar.
    """
    import librosa
    import librosa.display

    y = np.asarray(audio, dtype=np.float32).reshape(-1)
    if mel:
        s = librosa.feature.melspectrogram(
            y=y, sr=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=128
        )
        db = librosa.power_to_db(s, ref=np.max(s) if s.max() > 0 else 1.0, top_db=80)
        y_axis = "mel"
    else:
        s = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length))
        db = librosa.amplitude_to_db(
            s, ref=np.max(s) if s.max() > 0 else 1.0, top_db=80
        )
        y_axis = "hz"
    img = librosa.display.specshow(
        db,
        sr=sample_rate,
        hop_length=hop_length,
        x_axis="time",
        y_axis=y_axis,
        ax=ax,
        vmin=-80,
        vmax=0,
    )
    if max_hz:
        ax.set_ylim(0, max_hz)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mel frequency (Hz)" if mel else "frequency (Hz)")
    ax.grid(False)
    if colorbar:
        ax.figure.colorbar(img, ax=ax, format="%+.0f dB")
    return ax


def plot_envelope(
    ax,
    envelope,
    *,
    duration_s: float = P.DURATION_S,
    note_off_s: float = P.NOTE_OFF_S,
    sample_rate: int = 1000,
    annotate: bool = True,
):
    """The ADSR curve of :func:`fmlib.synth.engine.adsr_envelope` (linear or
    exponential, as ``envelope.curve`` says), segments named.

    Args:
        envelope: A :class:`fmlib.synth.patch.Envelope`.
        duration_s, note_off_s: Note length and note-off time, s.
        sample_rate: Resolution of the drawn curve, points per second.
        annotate: Label the A, D, S, R segments and the note-off time.
    """
    n = int(round(duration_s * sample_rate))
    env = adsr_envelope(envelope, n, sample_rate=sample_rate, note_off_s=note_off_s)
    t = np.arange(n) / sample_rate
    ax.plot(t, env, color=COLORS["carrier"], lw=1.5)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("envelope level")
    ax.set_ylim(0, 1.1)
    if annotate:
        a, d = envelope.attack_s, envelope.decay_s
        r, s = envelope.release_s, envelope.sustain
        ax.axvline(note_off_s, color="k", lw=0.8, ls="--")
        ax.text(note_off_s, 1.03, " note-off", fontsize=8, va="bottom")
        for x, label in (
            (a / 2, "A"),
            (a + d / 2, "D"),
            ((a + d + note_off_s) / 2, "S"),
            (note_off_s + r / 2, "R"),
        ):
            ax.text(
                x, 1.03 if label in "AD" else s + 0.05, label, ha="center", fontsize=9
            )
    return ax


def algorithm_layout(name: str) -> dict[str, tuple[float, float]]:
    """Positions (x, y) of the six operators for drawing an algorithm as a tree.

    The carrier sits at y = 0, every modulator one level above its target; leaves
    take consecutive x slots and every target is centred over its modulators.
    """
    alg = get_algorithm(name)
    pos: dict[str, tuple[float, float]] = {}
    next_x = [0.0]

    def place(op: str, depth: int) -> float:
        srcs = sorted(alg.sources(op))
        if not srcs:
            x = next_x[0]
            next_x[0] += 1.0
        else:
            x = float(np.mean([place(src, depth + 1) for src in srcs]))
        pos[op] = (x, float(depth))
        return x

    place(CARRIER, 0)
    return pos


def draw_algorithm(ax, name: str, *, title: bool = True):
    """Draw an algorithm of :data:`fmlib.synth.algorithms.ALGORITHMS` as an operator
    graph.

    Circles are operators (the carrier in red), arrows are "modulates the phase of",
    and the arrow under the carrier is the audio output.
    """
    alg = get_algorithm(name)
    pos = algorithm_layout(name)
    radius = 0.28
    for src, dst in alg.edges:
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        ax.annotate(
            "",
            xy=(x1, y1 + radius),
            xytext=(x0, y0 - radius),
            arrowprops={"arrowstyle": "-|>", "color": "k", "lw": 1.2},
        )
    for op, (x, y) in pos.items():
        color = COLORS["carrier"] if op == CARRIER else COLORS["modulator"]
        ax.add_patch(plt.Circle((x, y), radius, color=color, alpha=0.9, zorder=3))
        ax.text(
            x, y, op, ha="center", va="center", color="white", weight="bold", zorder=4
        )
    cx, cy = pos[CARRIER]
    ax.annotate(
        "",
        xy=(cx, cy - 0.8),
        xytext=(cx, cy - radius),
        arrowprops={"arrowstyle": "-|>", "color": COLORS["carrier"], "lw": 1.5},
    )
    ax.text(cx, cy - 0.85, "out", ha="center", va="top", color=COLORS["carrier"])
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    ax.set_ylim(min(ys) - 1.1, max(ys) + 0.6)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(name)
    return ax


def measure_sidebands(
    audio: np.ndarray,
    *,
    carrier_hz: float,
    modulator_hz: float,
    orders: range | list[int],
    sample_rate: int = P.SAMPLE_RATE,
) -> np.ndarray:
    """Measured amplitudes of the partials at ``carrier_hz + n * modulator_hz``.

    For a steady two-operator tone sin(2 pi f_c t + beta sin(2 pi f_m t)) these equal
    |J_n(beta)| (Chowning). Reads the peak of :func:`magnitude_spectrum` within one
    bin of each expected frequency, so pick a duration that puts the partials on
    bins (e.g. 1 s and whole-Hz frequencies).

    Returns:
        float64 array of shape (len(orders),), linear amplitudes (a unit sine: 1.0).

    Raises:
        InputError: a partial would fall at or below 0 Hz or at or above Nyquist.
    """
    f, a = magnitude_spectrum(audio, sample_rate=sample_rate)
    df = f[1] - f[0]
    out = []
    for n in orders:
        target = carrier_hz + n * modulator_hz
        if not 0 < target < sample_rate / 2:
            raise InputError(
                f"sideband n={n} at {target:g} Hz is outside "
                f"(0, {sample_rate / 2:g}) Hz; choose other frequencies or orders"
            )
        k = int(round(target / df))
        out.append(a[max(k - 1, 0) : k + 2].max())
    return np.array(out, dtype=np.float64)


def plot_hz_vs_mel(ax, *, max_hz: float = 8000.0):
    """Mel scale, mel(f) = 2595 log10(1 + f / 700), against linear Hz (paper Fig. 5)."""
    f = np.linspace(0, max_hz, 512)
    ax.plot(f, f, color=COLORS["baseline"], ls="--", label="linear (Hz)")
    ax.plot(f, 2595 * np.log10(1 + f / 700), color=COLORS["carrier"], label="mel")
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("scale value")
    ax.legend()
    return ax


def plot_history(ax, history, metric: str, *, label: str | None = None):
    """Training curve of one metric, train and validation (paper Figures 10-11).

    Args:
        history: pandas DataFrame of the model folder's ``history.csv``: an ``epoch``
            column counted from 0, ``<metric>`` and ``val_<metric>``.
        metric: ``"mse"`` or ``"mae"`` (on standardised targets).
        label: y-axis label (default: the metric in capitals).
    """
    epochs = history["epoch"].to_numpy() + 1
    ax.plot(epochs, history[metric], color=COLORS["train"], label="train")
    ax.plot(
        epochs, history[f"val_{metric}"], color=COLORS["validation"], label="validation"
    )
    ax.set_xlabel("epoch")
    ax.set_ylabel(label or f"{metric.upper()} (standardised targets)")
    ax.legend()
    return ax


def comparison_figure(examples, *, max_hz: float | None = None):
    """Spectrograms side by side: one row per example, one column per signal.

    Args:
        examples: list of ``(row_title, {column_title: audio})``; every dict has the
            same keys in the same order, audio float arrays of shape (64000,) at
            16 kHz (e.g. "original", "re-synthesis", "baseline").
        max_hz: Upper frequency shown, Hz.

    Returns:
        The matplotlib Figure (save it with :func:`save_figure`).
    """
    if not examples:
        raise InputError("comparison_figure: no examples to draw")
    columns = list(examples[0][1])
    fig, axes = plt.subplots(
        len(examples),
        len(columns),
        figsize=(3.6 * len(columns), 2.4 * len(examples)),
        squeeze=False,
        sharex=True,
        sharey=True,
    )
    for r, (title, signals) in enumerate(examples):
        for c, name in enumerate(columns):
            ax = axes[r, c]
            plot_spectrogram(ax, signals[name], max_hz=max_hz)
            ax.set_title(f"{title}: {name}", fontsize=9)
            if r < len(examples) - 1:
                ax.set_xlabel("")
            if c > 0:
                ax.set_ylabel("")
    fig.tight_layout()
    return fig


def prediction_scatter(
    predictions: dict,
    *,
    names: tuple[str, ...] = ("carrier_hz", "ratio_1", "index_1", "index_3", "decay_s"),
    max_points: int = 2000,
):
    """Predicted against true values, one row per model, one column per parameter.

    Args:
        predictions: ``{model label: (predicted (n, 15), truth (n, 15))}`` in
            :data:`fmlib.synth.params.TARGET_NAMES` order and original units (e.g.
            from :func:`fmlib.evaluation.parameter_scores.scores_table`).
        names: Parameters drawn; the carrier and ratios on log axes.
        max_points: At most this many notes drawn per panel (the first ones).

    Returns:
        The matplotlib Figure.
    """
    if not predictions:
        raise InputError("prediction_scatter: no predictions to draw")
    cols = [P.TARGET_NAMES.index(name) for name in names]
    fig, axes = plt.subplots(
        len(predictions),
        len(cols),
        figsize=(2.8 * len(cols), 2.6 * len(predictions)),
        squeeze=False,
    )
    for r, (label, (pred, truth)) in enumerate(predictions.items()):
        pred = np.asarray(pred, dtype=np.float64)[:max_points]
        truth = np.asarray(truth, dtype=np.float64)[:max_points]
        for c, (name, col) in enumerate(zip(names, cols, strict=True)):
            ax = axes[r, c]
            x, y = truth[:, col], pred[:, col]
            ax.scatter(x, y, s=3, alpha=0.3, linewidths=0)
            spec = P.spec_for(name)
            lo, hi = spec.low, spec.high
            if spec.scale == "log":
                ax.set_xscale("log")
                ax.set_yscale("log")
            ax.plot([lo, hi], [lo, hi], color="0.3", lw=0.8)
            ax.set_title(f"{label}: {name}", fontsize=9)
            ax.set_xlabel(f"true ({spec.unit})")
            if c == 0:
                ax.set_ylabel("predicted")
    fig.tight_layout()
    return fig


# ------------------------------------------------- paper Figures 6-9 (the network)
# Drawn from the Keras model itself (its layer list, shapes and configs), so they
# cannot drift from fmlib.estimate.model. Each box is a matplotlib FancyBboxPatch whose
# gid is "layer:<layer name>" (or "step:<n>"), which the tests count.


def conv1d_valid(
    x: np.ndarray,
    kernel: np.ndarray,
    *,
    stride: int = 1,
    bias: float = 0.0,
    activation: str | None = "relu",
) -> np.ndarray:
    """One filter of a 'valid' Conv1D as Keras computes it (cross-correlation): output
    ``i`` is ``act(sum(x[i*stride : i*stride + k] * kernel) + bias)``.

    Args:
        x: Input, shape (n,).
        kernel: One filter for one input channel, shape (k,), k <= n.
        stride: Hop between windows, samples.
        bias: Added before the activation.
        activation: ``"relu"`` or None (linear).

    Returns:
        float64 array of shape ((n - k) // stride + 1,).
    """
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    windows = np.lib.stride_tricks.sliding_window_view(x, kernel.size)[::stride]
    out = windows @ kernel + bias
    return np.maximum(out, 0.0) if activation == "relu" else out


def _cells(
    ax,
    values,
    *,
    x0: float,
    y: float,
    label: str,
    highlight=(),
    fmt="{:.2f}",
    fontsize: float | None = None,
):
    """A row of boxed numbers (one unit wide each), cells in ``highlight`` shaded."""
    from matplotlib.patches import Rectangle

    for i, v in enumerate(values):
        face = "#fde0c5" if i in highlight else "white"
        ax.add_patch(Rectangle((x0 + i, y), 1, 1, facecolor=face, edgecolor="k"))
        ax.text(
            x0 + i + 0.5,
            y + 0.5,
            fmt.format(v),
            ha="center",
            va="center",
            fontsize=fontsize,
        )
    ax.text(x0 - 0.3, y + 0.5, label, ha="right", va="center")


def plot_hadamard(
    x: np.ndarray,
    kernel: np.ndarray,
    *,
    stride: int,
    position: int | None = None,
    bias: float = 0.0,
    decimals: int = 2,
    note: str = "",
):
    """Figure 6: one filter slid over the input; at one position, the Hadamard
    (element-wise) product of the filter with the input slice, summed, plus the bias,
    through ReLU, gives one output value.

    The paper draws a 2-D image and a 2x2 filter; this network is 1-D, so the figure
    is drawn with its own first layer's kernel size and stride. Every number is
    rounded to ``decimals`` first and the arithmetic done on the rounded values, so a
    reader can check it by hand.

    Args:
        x: Input samples, shape (n,).
        kernel: One filter, shape (k,) (e.g. the first Conv1D's weights[:, 0, f]).
        stride: The layer's stride.
        position: Which output is worked out (0-based; default: the largest).
        bias: The filter's bias.
        decimals: Digits shown and computed with.
        note: A line under the figure (e.g. which layer and filter).

    Returns:
        The matplotlib Figure.

    Raises:
        InputError: the kernel is longer than the input or ``position`` is not an
            output of it.
    """
    x = np.round(np.asarray(x, dtype=np.float64), decimals)
    kernel = np.round(np.asarray(kernel, dtype=np.float64), decimals)
    bias = round(float(bias), decimals) + 0.0  # + 0.0: no "-0.00"
    k = kernel.size
    if not 0 < k <= x.size:
        raise InputError(f"plot_hadamard: kernel of {k} taps on {x.size} samples")
    out = conv1d_valid(x, kernel, stride=stride, bias=bias)
    if position is None:
        position = int(np.argmax(out))
    if not 0 <= position < out.size:
        raise InputError(
            f"plot_hadamard: position {position} outside 0..{out.size - 1}"
        )
    start = position * stride
    window = x[start : start + k]
    product = np.round(window * kernel, 2 * decimals)
    fmt = f"{{:.{decimals}f}}"
    fig, ax = plt.subplots(figsize=(max(8.0, 0.75 * x.size + 3), 5.2))
    span = range(start, start + k)
    _cells(ax, x, x0=0, y=6, label="input", highlight=span, fmt=fmt)
    _cells(ax, kernel, x0=start, y=4.2, label="filter", highlight=range(k), fmt=fmt)
    _cells(
        ax,
        product,
        x0=start,
        y=2.4,
        label="Hadamard\nproduct",
        highlight=range(k),
        fmt=f"{{:.{2 * decimals}f}}",
        fontsize=7,
    )
    _cells(ax, out, x0=0, y=0, label="output", highlight=[position], fmt=fmt)
    ax.text(start + k + 0.3, 4.7, "⊙", fontsize=16, va="center")
    total = float(product.sum())
    ax.annotate(
        f"sum {total:.{2 * decimals}f} + bias {bias:.{decimals}f} → ReLU → "
        f"{out[position]:.{decimals}f}",
        xy=(position + 0.5, 1.0),
        xytext=(start + k + 0.6, 2.9),
        arrowprops={"arrowstyle": "-|>", "color": COLORS["carrier"]},
        color=COLORS["carrier"],
        va="center",
    )
    ax.set_xlim(-3.2, max(x.size, start + k + 8))
    ax.set_ylim(-0.3, 7.3)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(
        f"Figure 6: a {k}-tap filter, stride {stride}: output {position} = "
        "ReLU(sum(filter ⊙ input slice) + bias)"
    )
    if note:
        ax.text(-3.0, -0.6, note, fontsize=9, va="top")
        ax.set_ylim(-1.3, 7.3)
    return fig


def most_active_filter(layer, x: np.ndarray) -> dict[str, object]:
    """The filter of a Conv1D layer (first input channel) whose output on ``x`` peaks
    highest, to show in :func:`plot_hadamard` (a trained layer's first filter may be
    silent on a given excerpt).

    Args:
        layer: A ``keras.layers.Conv1D`` with weights (built or trained).
        x: Input samples, shape (n,), n >= the kernel size.

    Returns:
        ``{"filter": index, "kernel": (k,) float32, "bias": float, "stride": int}``.
    """
    kernel, bias = layer.get_weights()
    stride = int(layer.strides[0])
    peaks = [
        conv1d_valid(x, kernel[:, 0, f], stride=stride, bias=float(bias[f])).max()
        for f in range(kernel.shape[2])
    ]
    f = int(np.argmax(peaks))
    return {
        "filter": f,
        "kernel": kernel[:, 0, f],
        "bias": float(bias[f]),
        "stride": stride,
    }


def layer_rows(model) -> list[dict[str, object]]:
    """One description per layer of a Keras model, in order.

    Args:
        model: A built ``keras.Model`` (e.g. ``fmlib.estimate.model.build_model()``).

    Returns:
        ``[{"name", "kind", "detail", "shape", "params"}, ...]``: the layer's name,
        class name, a one-line summary of its configuration (filters, kernel,
        stride, units, activation, rate), its output shape without the batch axis
        and its number of weights.
    """
    rows = []
    for layer in model.layers:
        cfg = layer.get_config()
        kind = type(layer).__name__
        if kind == "Conv1D":
            detail = (
                f"{cfg['filters']} filters, kernel {cfg['kernel_size'][0]}, "
                f"stride {cfg['strides'][0]}, {cfg['activation']}"
            )
        elif kind == "Dense":
            detail = f"{cfg['units']} units, {cfg['activation']}"
        elif kind == "Dropout":
            detail = f"rate {cfg['rate']:g}"
        elif kind == "InputLayer":
            kind, detail = "Input", "raw audio, 16 kHz"
        else:
            detail = ""
        shape = tuple(int(d) for d in layer.output.shape[1:])
        rows.append(
            {
                "name": layer.name,
                "kind": kind,
                "detail": detail,
                "shape": shape,
                "params": int(layer.count_params()),
            }
        )
    return rows


def split_layers(model) -> tuple[list[dict], list[dict]]:
    """:func:`layer_rows` split at the Flatten layer: (feature extractor up to and
    including Flatten, regressor after it), the paper's Figures 8 and 9.

    Raises:
        InputError: the model has no Flatten layer.
    """
    rows = layer_rows(model)
    kinds = [r["kind"] for r in rows]
    if "Flatten" not in kinds:
        raise InputError(f"model {model.name!r} has no Flatten layer to split at")
    cut = kinds.index("Flatten") + 1
    return rows[:cut], rows[cut:]


def _box(ax, x, y, w, h, text, *, gid, color):
    from matplotlib.patches import FancyBboxPatch

    box = FancyBboxPatch(
        (x - w / 2, y - h / 2),
        w,
        h,
        boxstyle="round,pad=0.02,rounding_size=0.08",
        facecolor=color,
        edgecolor="k",
        lw=1,
        gid=gid,
    )
    ax.add_patch(box)
    ax.text(x, y, text, ha="center", va="center", fontsize=8)
    return box


def _arrow(ax, start, end):
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops={"arrowstyle": "-|>", "color": "k", "lw": 1},
    )


_KIND_COLORS = {
    "Input": "#e8e8e8",
    "BatchNormalization": "#f3e6ff",
    "Conv1D": "#fde0c5",
    "Flatten": "#e8e8e8",
    "Dense": "#d5e8f7",
    "Dropout": "#f7f7d5",
}


def plot_layers(rows: list[dict], *, title: str, note: str = ""):
    """A left-to-right chain of boxes, one per layer row (see :func:`layer_rows`):
    class, configuration, output shape and weight count.

    Returns:
        The matplotlib Figure; its boxes carry gid ``"layer:<name>"``.
    """
    if not rows:
        raise InputError("plot_layers: no layers to draw")
    w, h, gap = 2.3, 1.5, 0.6
    fig, ax = plt.subplots(figsize=(max(6.0, (w + gap) * len(rows) * 1.05), 3.0))
    for i, row in enumerate(rows):
        x = i * (w + gap)
        shape = " × ".join(f"{d:,}" for d in row["shape"])
        lines = [f"{row['kind']}", row["name"]]
        if row["detail"]:
            lines.append(_wrap(row["detail"], 24))
        lines += [f"out: ({shape})", f"{row['params']:,} weights"]
        color = _KIND_COLORS.get(row["kind"], "white")
        _box(ax, x, 0, w, h, "\n".join(lines), gid=f"layer:{row['name']}", color=color)
        if i:
            _arrow(ax, (x - w / 2 - gap, 0), (x - w / 2, 0))
    ax.set_xlim(-w / 2 - 0.2, (len(rows) - 1) * (w + gap) + w / 2 + 0.2)
    ax.set_ylim(-h / 2 - 0.35, h / 2 + 0.1)
    ax.axis("off")
    ax.set_title(title)
    if note:
        ax.text(0.5, 0.0, note, transform=ax.transAxes, ha="center", fontsize=8)
    return fig


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def plot_feature_extractor(model):
    """Figure 8: the convolutional feature extractor (input to Flatten)."""
    extractor, _ = split_layers(model)
    total = sum(int(r["params"]) for r in extractor)
    return plot_layers(
        extractor,
        title=f"Figure 8: the feature extractor of {model.name} (CNN)",
        note=f"{total:,} weights; built by fmlib.estimate.model.build_model",
    )


def plot_regressor(model):
    """Figure 9: the regressor (the dense layers after Flatten, a common MLP)."""
    extractor, regressor = split_layers(model)
    total = sum(int(r["params"]) for r in regressor)
    n = extractor[-1]["shape"][0]
    return plot_layers(
        regressor,
        title=f"Figure 9: the regressor of {model.name} (MLP)",
        note=f"input: the {n:,} features of Figure 8; {total:,} weights",
    )


def plot_training_scheme(model, config: dict | None = None):
    """Figure 7: the training scheme. Random patches are rendered to audio, the CNN
    predicts the patch parameters from the audio, and the loss compares them with
    the true (standardised) parameters; the optimiser updates the CNN.

    Args:
        model: The Keras model (its name, input shape, output size and weight
            count are printed in the boxes).
        config: The model config (default :data:`fmlib.estimate.model.PAPER_CONFIG`):
            optimiser, learning rate, loss, batch size.

    Returns:
        The matplotlib Figure; its boxes carry gid ``"step:<n>"``, n = 0..5.
    """
    from fmlib.estimate.model import merge_config

    c = merge_config(config)
    n_in = int(model.input_shape[1])
    n_out = int(model.output_shape[-1])
    steps = [
        (
            "random patch\n(fmlib.datasets.sampler)",
            f"{n_out} parameters\nfrom the paper's ranges",
        ),
        ("FM synthesizer\n(fmlib.render)", "6 operators, ADSR\n48 kHz → 16 kHz"),
        ("audio", f"{n_in:,} samples\n({n_in / P.SAMPLE_RATE:g} s at 16 kHz)"),
        (f"CNN ({model.name})", f"{model.count_params():,} weights\n(Figures 8-9)"),
        ("predicted\nparameters", f"{n_out} values\n(standardised)"),
        (f"loss: {c['loss'].upper()}", "predicted vs true\nparameters"),
    ]
    fig, ax = plt.subplots(figsize=(14, 3.8))
    w, h, gap = 2.0, 1.4, 0.55
    xs = [i * (w + gap) for i in range(len(steps))]
    for i, (head, body) in enumerate(steps):
        color = "#fde0c5" if i == 3 else ("#d5e8f7" if i >= 4 else "#e8f5e0")
        _box(ax, xs[i], 0, w, h, f"{head}\n\n{body}", gid=f"step:{i}", color=color)
        if i:
            _arrow(ax, (xs[i - 1] + w / 2, 0), (xs[i] - w / 2, 0))
    # true parameters: from the sampler to the loss, above the chain
    top = h / 2 + 0.55
    ax.plot([xs[0], xs[0], xs[5]], [h / 2, top, top], color=COLORS["theory"], lw=1.2)
    _arrow(ax, (xs[5], top), (xs[5], h / 2))
    ax.text(
        (xs[0] + xs[5]) / 2,
        top + 0.1,
        f"true parameters (the training targets, {n_out} per note)",
        ha="center",
        va="bottom",
        color=COLORS["theory"],
        fontsize=9,
    )
    # back-propagation: from the loss to the CNN, below the chain
    bottom = -h / 2 - 0.55
    ax.plot(
        [xs[5], xs[5], xs[3]], [-h / 2, bottom, bottom], color=COLORS["carrier"], lw=1.2
    )
    _arrow(ax, (xs[3], bottom), (xs[3], -h / 2))
    ax.text(
        (xs[3] + xs[5]) / 2,
        bottom - 0.1,
        f"{c['optimizer']} (lr {c['learning_rate']:g}), batches of "
        f"{c['batch_size']}: update the weights",
        ha="center",
        va="top",
        color=COLORS["carrier"],
        fontsize=9,
    )
    ax.set_xlim(xs[0] - w / 2 - 0.2, xs[-1] + w / 2 + 0.2)
    ax.set_ylim(bottom - 0.6, top + 0.6)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("Figure 7: the CNN training scheme")
    return fig
