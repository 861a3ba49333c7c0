"""Statistics of a dataset: proportions against the paper's, histograms, aliasing.

``python -m fmlib stats DATASET_DIR [--out DIR]`` (:mod:`fmlib.cli.stats_cli`) writes,
into ``DIR`` (default
``DATASET_DIR/stats``): ``dataset_proportions.csv/.md``, ``dataset_aliasing.csv/.md``
(summary), ``dataset_aliasing_notes.csv`` (per note), ``dataset_histograms.png`` and
``dataset_stats.json`` (all numbers).

Aliasing. Every note is rendered at 48 kHz and low-passed to 16 kHz, so whatever the
FM spectrum holds above 24 kHz folds back below 24 kHz before the low-pass, and part
of it lands in the audible band. Two estimates per note:

* **Carson's rule, cascaded** (:func:`carson_upper_hz`). For a sinusoid of frequency
  ``f`` phase-modulated by sinusoids, Carson's rule puts ~98 % of the power below
  ``f + Δ + W``, where ``Δ`` is the peak frequency deviation and ``W`` the highest
  frequency of the modulating signal. For an operator ``op`` with sources ``s``
  (``index_s`` > 0) we use, recursively from the leaves::

      Δ(op) = Σ_s index_s · (f_s + Δ(s))      peak instantaneous deviation, Hz
      W(op) = max_s F(s)                      top of the modulating signal, Hz
      F(op) = f_op + Δ(op) + W(op)            upper edge of op's spectrum, Hz

  With one sinusoidal modulator this is the textbook ``f_c + (β + 1) f_m``. A note
  is flagged when ``F(carrier)`` > 24 kHz.
* **Oversampled measurement** (:func:`oversampled_shares`): the steady-state
  phase-modulation signal (no envelope) is computed in float64 at a rate high enough
  for its Carson band (at least 4 x 48 kHz), and the shares of its power above
  24 kHz, and of the part of it that folds into 0-8 kHz, are measured with an FFT.
  A share of at least 1 % (-20 dB) counts as significant.

Only components that fold into 0-8 kHz survive the 16 kHz low-pass: a component at
f > 24 kHz appears at |f - 48k * round(f / 48k)|, so 24-40 kHz lands in 8-24 kHz
(removed) and 40-56 kHz lands in 0-8 kHz (heard).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fmlib.datasets.sampler import SamplerConfig
from fmlib.errors import InputError
from fmlib.synth import params as P
from fmlib.synth.algorithms import CARRIER, MODULATORS, get_algorithm

#: Nyquist frequency of the 48 kHz internal render, Hz.
RENDER_NYQUIST_HZ = P.RENDER_SAMPLE_RATE / 2
#: Share of power above the Nyquist limit counted as significant (-20 dB).
SIGNIFICANT_SHARE = 0.01
#: Length of the steady-state segment measured by :func:`oversampled_shares`, s.
MEASURE_S = 0.05

_RATIO_COLS = [f"ratio_{i}" for i in range(1, P.N_MODULATORS + 1)]
_INDEX_COLS = [f"index_{i}" for i in range(1, P.N_MODULATORS + 1)]


def _frame(params) -> Any:
    """Accept a Dataset, a params DataFrame or an (n, 15) array; return a DataFrame."""
    import pandas as pd

    if hasattr(params, "params") and hasattr(params, "read"):  # a Dataset
        params = params.params
    if isinstance(params, pd.DataFrame):
        missing = [c for c in P.TARGET_NAMES if c not in params.columns]
        if missing:
            raise InputError(f"params: missing columns {', '.join(missing)}")
        return params
    v = np.asarray(params, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != len(P.TARGET_NAMES):
        raise InputError(f"params: expected shape (n, 15), got {v.shape}")
    return pd.DataFrame(v, columns=list(P.TARGET_NAMES))


def _algorithm(df, algorithm: str | None) -> str:
    if algorithm is not None:
        return get_algorithm(algorithm).name
    if "algorithm" in df.columns:
        names = sorted(set(df["algorithm"]))
        if len(names) != 1:
            raise InputError(f"params: expected one algorithm, found {names}")
        return get_algorithm(names[0]).name
    return get_algorithm("dx7_18").name


# ---------------------------------------------------------------------- proportions
def index_bin_of(indices: np.ndarray, bins) -> np.ndarray:
    """Bin number of each index: bin k holds [low_k, high_k); the last bin includes
    its high end. -1 for values outside every bin.

    Args:
        indices: float array of any shape, radians.
        bins: ((low, high, probability), ...) as in :class:`SamplerConfig`.

    Returns:
        int array of the same shape.
    """
    x = np.asarray(indices, dtype=np.float64)
    out = np.full(x.shape, -1, dtype=np.int64)
    for k, (lo, hi, _) in enumerate(bins):
        inside = (x >= lo) & ((x < hi) if k < len(bins) - 1 else (x <= hi))
        out[inside & (out < 0)] = k
    return out


def proportions(params, *, config: SamplerConfig | None = None):
    """Empirical shares of the ratio branches and index bins against the expected ones.

    A ratio counts as "discrete" when it equals a member of ``config.ratio_set``
    exactly (a log-uniform draw does so with probability 0). Each of the 5 ratios and
    5 indices of every note is one draw.

    Args:
        params: A Dataset, its ``params`` DataFrame or an (n, 15) array.
        config: The expected distributions (default: the paper's).

    Returns:
        DataFrame with columns quantity, paper, empirical, count, draws, z (the
        binomial z-score of the count: |z| < 3.3 happens with probability 0.999).
    """
    import pandas as pd

    config = config or SamplerConfig()
    df = _frame(params)
    ratios = df[_RATIO_COLS].to_numpy(dtype=np.float64).ravel()
    indices = df[_INDEX_COLS].to_numpy(dtype=np.float64).ravel()
    discrete = int(np.isin(ratios, np.asarray(config.ratio_set)).sum())
    rows = [
        ("ratio from the discrete set", config.p_discrete, discrete, ratios.size),
        (
            "ratio log-uniform",
            round(1 - config.p_discrete, 12),
            ratios.size - discrete,
            ratios.size,
        ),
    ]
    which = index_bin_of(indices, config.index_bins)
    last = len(config.index_bins) - 1
    for k, (lo, hi, p) in enumerate(config.index_bins):
        close = "]" if k == last else ")"
        rows.append(
            (
                f"index in [{lo:g}, {hi:g}{close}",
                p,
                int((which == k).sum()),
                indices.size,
            )
        )
    out = []
    for name, p, count, draws in rows:
        sd = np.sqrt(draws * p * (1 - p))
        z = (count - draws * p) / sd if sd > 0 else 0.0
        out.append((name, float(p), count / draws, count, draws, float(z)))
    return pd.DataFrame(
        out, columns=["quantity", "paper", "empirical", "count", "draws", "z"]
    )


# --------------------------------------------------------------------------- histograms
def histogram_figure(params, *, bins: int = 50):
    """One histogram per parameter (15 panels), with the sampled range marked.

    Row 1: carrier and the envelope; row 2: ratios (log axis, so the discrete values
    appear as evenly spaced spikes); row 3: indices (bin edges 0.5 and 3 dashed).

    Returns:
        A matplotlib Figure (save it with :func:`fmlib.notebook.plots.save_figure`).
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    df = _frame(params)
    fig, axes = plt.subplots(3, 5, figsize=(15, 8), constrained_layout=True)
    layout = [
        ["carrier_hz", "attack_s", "decay_s", "sustain", "release_s"],
        _RATIO_COLS,
        _INDEX_COLS,
    ]
    for row, names in zip(axes, layout, strict=True):
        for ax, name in zip(row, names, strict=True):
            spec = P.PARAMS[name]
            x = df[name].to_numpy(dtype=np.float64)
            if name.startswith("ratio"):
                edges = np.geomspace(spec.low, spec.high, bins * 2 + 1)
                ax.set_xscale("log")
                ticks = [1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8]
                ax.set_xticks(ticks, ["1/8", "1/4", "1/2", "1", "2", "4", "8"])
                ax.xaxis.set_minor_formatter(NullFormatter())
            else:
                edges = np.linspace(spec.low, spec.high, bins + 1)
            ax.hist(x, bins=edges, color="C0")
            if name.startswith("index"):
                for edge in (0.5, 3.0):
                    ax.axvline(edge, color="C3", linestyle="--", linewidth=0.8)
            ax.set_xlabel(f"{name} ({spec.unit})")
            ax.set_xlim(spec.low, spec.high)
        row[0].set_ylabel("notes")
    fig.suptitle(f"Parameter histograms ({len(df)} notes)")
    return fig


# --------------------------------------------------------------------------- aliasing
def _operator_arrays(df) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    carrier = df["carrier_hz"].to_numpy(dtype=np.float64)
    freq = {CARRIER: carrier}
    index = {}
    for i, name in enumerate(MODULATORS, start=1):
        freq[name] = df[f"ratio_{i}"].to_numpy(dtype=np.float64) * carrier
        index[name] = df[f"index_{i}"].to_numpy(dtype=np.float64)
    return freq, index


def _carson(params, algorithm: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The carrier's peak deviation and Carson upper edge, Hz (module docstring)."""
    df = _frame(params)
    alg = get_algorithm(_algorithm(df, algorithm))
    freq, index = _operator_arrays(df)
    deviation: dict[str, np.ndarray] = {}
    upper: dict[str, np.ndarray] = {}
    for op in alg.render_order():
        dev = np.zeros(len(df))
        top = np.zeros(len(df))
        for src in alg.sources(op):
            active = index[src] > 0
            dev += index[src] * (freq[src] + deviation[src])
            top = np.maximum(top, np.where(active, upper[src], 0.0))
        deviation[op] = dev
        upper[op] = freq[op] + dev + top
    return deviation[CARRIER], upper[CARRIER]


def carson_upper_hz(params, *, algorithm: str | None = None) -> np.ndarray:
    """Upper edge of each note's spectrum by Carson's rule, cascaded (module docstring).

    Args:
        params: A Dataset, its params DataFrame or an (n, 15) array.
        algorithm: Operator graph (default: the params' ``algorithm`` column, else
            ``dx7_18``).

    Returns:
        float64 array of shape (n,), Hz, before any envelope or low-pass.
    """
    return _carson(params, algorithm)[1]


def peak_deviation_hz(params, *, algorithm: str | None = None) -> np.ndarray:
    """Peak instantaneous frequency deviation of each note's carrier, Hz: ``Δ`` of the
    module docstring, cascaded. Where it exceeds the carrier, sidebands fold around
    0 Hz.

    Args:
        params, algorithm: As :func:`carson_upper_hz`.

    Returns:
        float64 array of shape (n,), Hz.
    """
    return _carson(params, algorithm)[0]


def folded_hz(f_hz: np.ndarray, *, sample_rate: float = P.RENDER_SAMPLE_RATE):
    """Frequency at which a component at ``f_hz`` appears after sampling, Hz.

    Returns:
        float64 array like ``f_hz``, in [0, sample_rate / 2].
    """
    f = np.asarray(f_hz, dtype=np.float64)
    return np.abs(f - sample_rate * np.round(f / sample_rate))


def oversampled_shares(
    params, *, algorithm: str | None = None, duration_s: float = MEASURE_S
) -> np.ndarray:
    """Measured aliasing of each note from an oversampled, alias-free computation.

    The note's operator graph is computed without envelope in float64 at
    ``max(4 x 48 kHz, 48 kHz x ceil(2.5 x Carson upper edge / 48 kHz))`` (so nothing
    of significance folds back) over ``duration_s`` seconds, and its Hann-windowed
    power spectrum is split into: power above 24 kHz (aliases in the 48 kHz render),
    and the part of it that folds into 0-8 kHz (survives the low-pass to 16 kHz:
    audible aliasing; components at 24-40 kHz fold to 8-24 kHz and are removed).

    Returns:
        float64 array of shape (n, 2): [share above 24 kHz, share folding below
        8 kHz], each a fraction of the note's power in [0, 1].
    """
    df = _frame(params)
    alg = get_algorithm(_algorithm(df, algorithm))
    freq, index = _operator_arrays(df)
    upper = carson_upper_hz(df, algorithm=alg.name)
    base = P.RENDER_SAMPLE_RATE
    out = np.empty((len(df), 2))
    for i in range(len(df)):
        rate = base * max(4, int(np.ceil(2.5 * upper[i] / base)))
        n = int(round(duration_s * rate))
        t = np.arange(n) / rate
        signals: dict[str, np.ndarray] = {}
        for op in alg.render_order():
            phase = 2 * np.pi * freq[op][i] * t
            for src in alg.sources(op):
                phase += signals[src]
            amp = 1.0 if op == CARRIER else index[op][i]
            signals[op] = amp * np.sin(phase)
        power = np.abs(np.fft.rfft(signals[CARRIER] * np.hanning(n))) ** 2
        f = np.fft.rfftfreq(n, 1 / rate)
        above = f > RENDER_NYQUIST_HZ
        audible = above & (folded_hz(f) < P.SAMPLE_RATE / 2)
        total = power.sum()
        out[i] = power[above].sum() / total, power[audible].sum() / total
    return out


def aliasing_notes(params, *, algorithm: str | None = None, measure: bool = True):
    """Per-note aliasing estimates.

    Returns:
        DataFrame with columns note, carson_upper_hz, carson_aliases (upper edge
        > 24 kHz) and, when ``measure``, share_above_24k and share_folding_below_8k
        (fractions of the note's power, see :func:`oversampled_shares`).
    """
    import pandas as pd

    df = _frame(params)
    upper = carson_upper_hz(df, algorithm=algorithm)
    out = pd.DataFrame(
        {
            "note": np.arange(len(df)),
            "carson_upper_hz": upper,
            "carson_aliases": upper > RENDER_NYQUIST_HZ,
        }
    )
    if measure:
        shares = oversampled_shares(df, algorithm=algorithm)
        out["share_above_24k"] = shares[:, 0]
        out["share_folding_below_8k"] = shares[:, 1]
    return out


def aliasing_summary(notes):
    """Summarise :func:`aliasing_notes` output.

    Returns:
        DataFrame with columns estimate, criterion, notes, share (of all notes).
    """
    import pandas as pd

    n = len(notes)
    upper = notes["carson_upper_hz"]
    rows = [
        ("Carson", "upper edge > 8 kHz (removed by the output low-pass)", upper > 8e3),
        ("Carson", "upper edge > 24 kHz (aliases in the 48 kHz render)", upper > 24e3),
        ("Carson", "upper edge > 40 kHz (aliases can reach 0-8 kHz)", upper > 40e3),
    ]
    if "share_above_24k" in notes.columns:
        above = notes["share_above_24k"]
        audible = notes["share_folding_below_8k"]
        rows += [
            ("oversampled", ">= 1% of power above 24 kHz", above >= SIGNIFICANT_SHARE),
            ("oversampled", ">= 0.01% of power above 24 kHz", above >= 1e-4),
            (
                "oversampled",
                ">= 1% of power folds into 0-8 kHz",
                audible >= SIGNIFICANT_SHARE,
            ),
            ("oversampled", ">= 0.01% of power folds into 0-8 kHz", audible >= 1e-4),
        ]
    return pd.DataFrame(
        [(e, c, int(m.sum()), int(m.sum()) / n) for e, c, m in rows],
        columns=["estimate", "criterion", "notes", "share"],
    )


def aliasing_report(params, *, algorithm: str | None = None, measure: bool = True):
    """Summary: how many notes carry significant energy above 24 kHz.

    Args:
        params: A Dataset, its params DataFrame or an (n, 15) array.
        algorithm: Operator graph (default: from the params).
        measure: Also run the oversampled measurement (a few ms per note).

    Returns:
        DataFrame with columns estimate, criterion, notes, share (of all notes).
    """
    return aliasing_summary(
        aliasing_notes(params, algorithm=algorithm, measure=measure)
    )
