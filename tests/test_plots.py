"""The paper's Figures 6-9, drawn from the Keras model: one box per layer, the
layers' real shapes and configs, and a convolution that Keras agrees with."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.patches import FancyBboxPatch

from fmlib.errors import InputError
from fmlib.estimate.model import N_TARGETS, PAPER_CONFIG, build_model
from fmlib.notebook.plots import (
    conv1d_valid,
    layer_rows,
    most_active_filter,
    plot_feature_extractor,
    plot_hadamard,
    plot_regressor,
    plot_training_scheme,
    save_figure,
    split_layers,
)


@pytest.fixture(scope="module")
def model():
    return build_model(PAPER_CONFIG)


def _boxes(fig):
    return [
        p.get_gid()
        for ax in fig.axes
        for p in ax.patches
        if isinstance(p, FancyBboxPatch)
    ]


def _text(fig):
    return "\n".join(t.get_text() for ax in fig.axes for t in ax.texts) + "\n".join(
        ax.get_title() for ax in fig.axes
    )


def test_figures_8_and_9_have_one_box_per_layer_in_order(model, tmp_path):
    fig8, fig9 = plot_feature_extractor(model), plot_regressor(model)
    names = [layer.name for layer in model.layers]
    boxes = _boxes(fig8) + _boxes(fig9)
    assert boxes == [f"layer:{n}" for n in names]
    assert _boxes(fig8)[-1] == "layer:flatten"
    text8, text9 = _text(fig8), _text(fig9)
    # the paper's Table 2: kernels 5/128/512, strides 2/16/32, 3,008 features
    for want in ("16 filters, kernel 5", "stride 16", "kernel 512", "(47 × 64)"):
        assert want in text8, want
    assert "(3,008)" in text8 and "3,008 features" in text9
    assert f"{N_TARGETS} units, linear" in text9 and "rate 0.2" in text9
    total = sum(r["params"] for r in layer_rows(model))
    assert total == model.count_params()
    assert save_figure(fig8, "fig08", out_dir=tmp_path, show=False).is_file()
    plt.close(fig9)


def test_figures_follow_the_model_config():
    """Another config draws other boxes: the figures cannot drift from the code."""
    small = build_model(
        {
            "conv_filters": [4, 8, 8],
            "dense_divisors": [2, 4, 8],
            "dense_l2": [True, False, False],
        }
    )
    extractor, regressor = split_layers(small)
    assert [r["detail"].split(",")[0] for r in extractor if r["kind"] == "Conv1D"] == [
        "4 filters",
        "8 filters",
        "8 filters",
    ]
    assert [r["kind"] for r in regressor].count("Dense") == 4
    fig = plot_regressor(small)
    assert len(_boxes(fig)) == len(regressor) == len(small.layers) - len(extractor)
    plt.close(fig)


def test_figure_7_training_scheme_reads_the_model_and_config(model):
    fig = plot_training_scheme(model)
    assert _boxes(fig) == [f"step:{i}" for i in range(6)]
    text = _text(fig)
    assert "64,000 samples" in text and f"{model.count_params():,} weights" in text
    assert f"{N_TARGETS} parameters" in text and "loss: MSE" in text
    assert "adamax (lr 0.001), batches of 32" in text
    fig2 = plot_training_scheme(model, {"optimizer": "sgd", "batch_size": 8})
    assert "sgd (lr 0.001), batches of 8" in _text(fig2)
    plt.close(fig)
    plt.close(fig2)


def test_conv1d_valid_agrees_with_keras(model, rng):
    layer = model.get_layer("extractor1")
    kernel, bias = layer.get_weights()
    bias = bias + 0.05  # a non-zero bias (fresh layers start at 0)
    layer.set_weights([kernel, bias])
    x = rng.standard_normal(101).astype(np.float32)
    want = np.asarray(layer(x[None, :, None]))[0]  # (49, 16)
    for f in (0, 7):
        got = conv1d_valid(x, kernel[:, 0, f], stride=layer.strides[0], bias=bias[f])
        np.testing.assert_allclose(got, want[:, f], atol=1e-5)
    assert conv1d_valid(
        [1, 2, 3, 4, 5], [1, -1], stride=2, activation=None
    ).tolist() == [
        -1.0,
        -1.0,
    ]


def test_figure_6_works_out_one_output_by_hand():
    x = [0.5, -1.0, 2.0, 0.25, 1.0, -0.5, 0.75]
    kernel = [0.5, 0.25, -1.0]
    fig = plot_hadamard(x, kernel, stride=2, position=1, bias=0.1)
    text = _text(fig)
    # window x[2:5] = 2, 0.25, 1; products 1, 0.0625, -1 -> sum 0.0625 + 0.1
    assert "0.0625" in text and "sum 0.0625 + bias 0.10 → ReLU → 0.16" in text
    assert "stride 2" in text and "3-tap filter" in text
    plt.close(fig)
    fig = plot_hadamard(x, kernel, stride=2, bias=-0.001, note="filter 3")
    out = conv1d_valid(np.round(x, 2), kernel, stride=2)
    text = _text(fig)  # default position: the largest output
    assert f"output {int(np.argmax(out))} =" in text
    assert "filter 3" in text and "bias 0.00 " in text  # never "-0.00"
    plt.close(fig)
    with pytest.raises(InputError, match="position"):
        plot_hadamard(x, kernel, stride=2, position=3)
    with pytest.raises(InputError, match="taps"):
        plot_hadamard(x[:2], kernel, stride=1)


def test_most_active_filter(model, rng):
    layer = model.get_layer("extractor1")
    x = rng.standard_normal(40)
    pick = most_active_filter(layer, x)
    kernel, bias = layer.get_weights()
    peaks = [
        conv1d_valid(x, kernel[:, 0, f], stride=2, bias=bias[f]).max()
        for f in range(16)
    ]
    assert pick["filter"] == int(np.argmax(peaks)) and pick["stride"] == 2
    np.testing.assert_array_equal(pick["kernel"], kernel[:, 0, pick["filter"]])


def test_save_figure_defaults_to_the_interactive_folder(tmp_path, monkeypatch):
    import fmlib.notebook.plots

    monkeypatch.setattr(
        fmlib.notebook.plots, "INTERACTIVE_DIR", tmp_path / "interactive"
    )
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    path = save_figure(fig, "default_place", show=False)
    assert path == tmp_path / "interactive" / "figures" / "default_place.png"
    assert path.is_file()


@pytest.mark.parametrize("curve", ["linear", "exponential"])
def test_plot_envelope_draws_either_curve(curve):
    from fmlib.notebook.plots import plot_envelope
    from fmlib.synth.engine import adsr_envelope
    from fmlib.synth.patch import Envelope

    env = Envelope(0.05, 0.5, 0.25, 0.4, curve)
    fig, ax = plt.subplots()
    try:
        plot_envelope(ax, env)
        y = ax.lines[0].get_ydata()
        np.testing.assert_array_equal(
            y, adsr_envelope(env, y.size, sample_rate=1000, note_off_s=3.0)
        )
    finally:
        plt.close(fig)
