"""The paper's CNN (Tables 2-3), the target scaler, canonical order, post-processing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fmlib.errors import InputError
from fmlib.estimate.model import (
    PAPER_CONFIG,
    TargetScaler,
    build_model,
    canonicalize,
    conv_output_length,
    flattened_size,
    merge_config,
    postprocess,
    snap_ratios,
)
from fmlib.synth import params as P
from fmlib.synth.engine import render
from fmlib.synth.patch import patch_from_vector


@pytest.fixture(scope="module")
def paper_model():
    return build_model()


def test_flattened_size_is_3008():
    # 64000 -> (64000-5)//2+1 = 31998 -> (31998-128)//16+1 = 1992
    #       -> (1992-512)//32+1 = 47
    assert conv_output_length(64000, 5, 2) == 31998
    assert conv_output_length(31998, 128, 16) == 1992
    assert conv_output_length(1992, 512, 32) == 47
    assert flattened_size() == 47 * 64 == 3008


def test_architecture_matches_tables_2_and_3(paper_model):
    import keras

    layers = paper_model.layers
    kinds = [type(layer).__name__ for layer in layers]
    assert kinds == [
        "InputLayer",
        "BatchNormalization",
        "Conv1D",
        "Conv1D",
        "Conv1D",
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
        "Dense",
    ]
    assert paper_model.input_shape == (None, 64000, 1)
    convs = [layer for layer in layers if isinstance(layer, keras.layers.Conv1D)]
    assert [c.filters for c in convs] == [16, 32, 64]
    assert [c.kernel_size for c in convs] == [(5,), (128,), (512,)]
    assert [c.strides for c in convs] == [(2,), (16,), (32,)]
    assert [c.padding for c in convs] == ["valid"] * 3
    assert [c.output.shape[1:] for c in convs] == [(31998, 16), (1992, 32), (47, 64)]
    for c in convs:
        assert c.activation is keras.activations.relu
        assert c.use_bias
        assert isinstance(c.kernel_regularizer, keras.regularizers.L2)
        assert c.kernel_regularizer.l2 == pytest.approx(0.01)
    assert layers[5].output.shape[1:] == (3008,)
    d1, drop, d2, out = layers[6], layers[7], layers[8], layers[9]
    assert (d1.units, d2.units, out.units) == (1504, 752, 15)
    assert d1.activation is keras.activations.relu
    assert d2.activation is keras.activations.relu
    assert out.activation is keras.activations.linear
    assert d1.use_bias and d2.use_bias and out.use_bias
    assert d1.kernel_regularizer.l2 == pytest.approx(0.01)
    assert d2.kernel_regularizer is None and out.kernel_regularizer is None
    assert drop.rate == pytest.approx(0.2)
    assert paper_model.count_params() == 6_782_899


def test_variable_activation_and_bias_are_options():
    import keras

    m = build_model(
        {
            "conv_filters": [2, 2, 2],
            "dense_activation": "tanh",
            "dense_use_bias": False,
            "output_use_bias": False,
            "l2": 0.0,
        }
    )
    dense = [layer for layer in m.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [47, 23, 15]  # n = 47 * 2 = 94
    assert dense[0].activation is keras.activations.tanh
    assert not any(d.use_bias for d in dense)
    assert all(d.kernel_regularizer is None for d in dense)


def test_unknown_config_key_is_an_input_error():
    with pytest.raises(InputError, match="unknown key 'filters'"):
        merge_config({"filters": 3})
    assert merge_config(None) == PAPER_CONFIG
    assert merge_config(None) is not PAPER_CONFIG


def test_paper_training_defaults():
    c = PAPER_CONFIG
    assert (c["optimizer"], c["loss"], c["epochs"], c["batch_size"]) == (
        "adamax",
        "mse",
        200,
        32,
    )
    assert c["early_stopping_patience"] == 10 and c["restore_best_weights"]
    assert (c["test_fraction"], c["val_fraction"]) == (0.25, 0.2)


def test_scaler_round_trip(rng):
    v = rng.normal(loc=np.arange(15), scale=np.arange(1, 16), size=(500, 15))
    v[:, 3] = 2.0  # a constant target
    s = TargetScaler().fit(v)
    z = s.transform(v)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.delete(z.std(axis=0), 3), 1.0, atol=1e-5)
    assert s.std[3] == 1.0 and np.all(z[:, 3] == 0)
    np.testing.assert_allclose(s.inverse_transform(z), v, rtol=1e-6, atol=1e-5)
    s2 = TargetScaler.from_dict(json.loads(json.dumps(s.to_dict())))
    np.testing.assert_array_equal(s2.mean, s.mean)
    np.testing.assert_array_equal(s2.std, s.std)
    np.testing.assert_array_equal(s2.transform(v), z)


def test_scaler_rejects_bad_input():
    with pytest.raises(InputError, match="not fitted"):
        TargetScaler().transform(np.zeros((1, 15)))
    with pytest.raises(InputError, match="shape"):
        TargetScaler().fit(np.zeros((4, 14)))
    with pytest.raises(InputError, match="stds positive"):
        TargetScaler.from_dict({"mean": [0.0] * 15, "std": [0.0] * 15})


def _vector(r1, i1, r2, i2):
    return np.array(
        [220.0, r1, r2, 3.0, 1.0, 0.5, i1, i2, 1.0, 0.5, 0.2, 0.01, 0.1, 0.5, 0.2]
    )


def test_canonicalize_sorts_m1_m2_by_ratio_then_index():
    v = np.stack(
        [
            _vector(4.0, 1.0, 2.0, 3.0),
            _vector(2.0, 3.0, 4.0, 1.0),
            _vector(2.0, 5, 2.0, 1),
        ]
    )
    c = canonicalize(v, algorithm="dx7_18")
    np.testing.assert_array_equal(c[0], _vector(2.0, 3.0, 4.0, 1.0))  # swapped
    np.testing.assert_array_equal(c[1], v[1])  # already canonical
    np.testing.assert_array_equal(c[2], _vector(2.0, 1, 2.0, 5))  # tie: by index
    np.testing.assert_array_equal(canonicalize(c, algorithm="dx7_18"), c)  # idempotent
    np.testing.assert_array_equal(canonicalize(v, algorithm="serial"), v)
    per_row = canonicalize(v, algorithm=["serial", "dx7_18", "dx7_18"])
    np.testing.assert_array_equal(per_row[0], v[0])
    np.testing.assert_array_equal(per_row[2], c[2])
    assert v[0, 1] == 4.0  # the input is not modified


def test_swapping_m1_m2_does_not_change_the_sound_in_dx7_18():
    v = _vector(4.0, 1.5, 2.0, 3.0)
    swapped = canonicalize(v, algorithm="dx7_18")
    a = render(patch_from_vector(v), duration_s=0.25, note_off_s=0.2)
    b = render(patch_from_vector(swapped), duration_s=0.25, note_off_s=0.2)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_snap_ratios_in_log_space():
    r = np.array([0.72, 0.7, 7.45, 7.49, 1.0, 0.13, 3.2, 0.0, -2.0, 100.0])
    expected = [1.0, 0.5, 7.0, 8.0, 1.0, 0.125, 3.0, 0.125, 0.125, 8.0]
    # 0.72 and 7.49 would snap to 0.5 and 7 in linear space
    np.testing.assert_array_equal(snap_ratios(r), expected)
    assert set(snap_ratios(np.geomspace(0.01, 100, 300))) <= set(P.DISCRETE_RATIOS)


def test_postprocess_clips_and_snaps():
    v = np.array(
        [10_000.0, 0.72, 9.0, -1.0, 2.1, 1.0, -1.0, 9.0, 4.0, 0.0, 8.0]
        + [0.0, 1.0, 1.2, 0.01]
    )
    out = postprocess(v)
    expected = np.array(
        [6000.0, 1.0, 8.0, 0.125, 2.0, 1.0, 0.0, 8.0, 4.0, 0.0, 8.0]
        + [0.005, 0.6, 0.9, 0.05]
    )
    np.testing.assert_array_equal(out, expected)
    assert postprocess(v, snap=False)[1] == 0.72
    assert postprocess(np.stack([v, v])).shape == (2, 15)
    patch_from_vector(out)  # valid patch
    with pytest.raises(InputError, match="NaN"):
        postprocess(np.full(15, np.nan))
