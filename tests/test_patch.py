"""Tests of the patch format (fmlib.synth.patch): validation of every bad input, JSON
files, round trips."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from fmlib.errors import InputError, MissingFileError
from fmlib.synth import params as P
from fmlib.synth.engine import render
from fmlib.synth.patch import (
    Patch,
    load_patch,
    patch_from_dict,
    patch_from_vector,
    save_patch,
)

VALID = {
    "algorithm": "dx7_18",
    "carrier_hz": 440.0,
    "modulators": [
        {"ratio": 2.0, "index": 1.5},
        {"ratio": 1.0, "index": 0.0},
        {"ratio": 3.0, "index": 0.7},
        {"ratio": 1.0, "index": 0.0},
        {"ratio": 0.5, "index": 2.0},
    ],
    "envelope": {"attack_s": 0.01, "decay_s": 0.2, "sustain": 0.6, "release_s": 0.3},
}


def edited(path: tuple, value=None, *, delete: bool = False) -> dict:
    """A deep copy of VALID with the item at ``path`` replaced or deleted."""
    d = copy.deepcopy(VALID)
    target = d
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return d


NAN, INF = float("nan"), float("inf")

#: (bad patch, text the one-line message must contain: the field)
BAD_PATCHES = [
    # missing keys
    (edited(("carrier_hz",), delete=True), "carrier_hz: missing"),
    (edited(("modulators",), delete=True), "modulators: missing"),
    (edited(("envelope",), delete=True), "envelope: missing"),
    (edited(("modulators", 2, "ratio"), delete=True), r"modulators\[2\] \(M3\).ratio"),
    (edited(("modulators", 0, "index"), delete=True), r"modulators\[0\] \(M1\).index"),
    (edited(("envelope", "attack_s"), delete=True), "envelope.attack_s"),
    (edited(("envelope", "sustain"), delete=True), "envelope.sustain"),
    (edited(("envelope", "release_s"), delete=True), "envelope.release_s"),
    # wrong types
    (edited(("carrier_hz",), "440"), "carrier_hz"),
    (edited(("carrier_hz",), None), "carrier_hz"),
    (edited(("carrier_hz",), True), "carrier_hz"),
    (edited(("carrier_hz",), [440.0]), "carrier_hz"),
    (edited(("modulators",), {"ratio": 1.0, "index": 1.0}), "modulators"),
    (edited(("modulators",), "M1"), "modulators"),
    (edited(("modulators", 1), [1.0, 2.0]), r"modulators\[1\] \(M2\)"),
    (edited(("modulators", 4, "index"), "2"), r"modulators\[4\] \(M5\).index"),
    (edited(("envelope",), [0.01, 0.2, 0.6, 0.3]), "envelope"),
    (edited(("envelope", "decay_s"), "0.2"), "envelope.decay_s"),
    (edited(("algorithm",), 18), "algorithm"),
    # NaN and infinity
    (edited(("carrier_hz",), NAN), "carrier_hz"),
    (edited(("carrier_hz",), INF), "carrier_hz"),
    (edited(("modulators", 3, "ratio"), NAN), r"\(M4\).ratio"),
    (edited(("modulators", 3, "index"), INF), r"\(M4\).index"),
    (edited(("modulators", 3, "index"), -INF), r"\(M4\).index"),
    (edited(("envelope", "attack_s"), NAN), "envelope.attack_s"),
    (edited(("envelope", "sustain"), INF), "envelope.sustain"),
    # out of the valid range
    (edited(("carrier_hz",), 0.0), "carrier_hz"),
    (edited(("carrier_hz",), -440.0), "carrier_hz"),
    (edited(("carrier_hz",), 30_000.0), "carrier_hz"),  # above 48 kHz Nyquist
    (edited(("modulators", 0, "ratio"), 0.0), r"\(M1\).ratio"),
    (edited(("modulators", 0, "ratio"), -2.0), r"\(M1\).ratio"),
    (edited(("modulators", 2, "index"), -0.1), r"\(M3\).index"),
    (edited(("envelope", "attack_s"), -0.01), "envelope.attack_s"),
    (edited(("envelope", "decay_s"), -1.0), "envelope.decay_s"),
    (edited(("envelope", "release_s"), -0.3), "envelope.release_s"),
    (edited(("envelope", "sustain"), -0.1), "envelope.sustain"),
    (edited(("envelope", "sustain"), 1.1), "envelope.sustain"),
    # unknown algorithm, wrong number of modulators
    (edited(("algorithm",), "dx7_32"), "algorithm: unknown"),
    (edited(("algorithm",), ""), "algorithm: unknown"),
    (
        edited(("modulators",), VALID["modulators"][:4]),
        "modulators: expected exactly 5",
    ),
    (
        edited(("modulators",), VALID["modulators"] * 2),
        "modulators: expected exactly 5",
    ),
    (edited(("modulators",), []), "modulators: expected exactly 5"),
    # not a patch at all
    ([VALID], "patch: expected an object"),
    ("dx7_18", "patch: expected an object"),
    (None, "patch: expected an object"),
]


@pytest.mark.parametrize(("bad", "field"), BAD_PATCHES)
def test_bad_patch_is_rejected_naming_the_field(bad, field):
    with pytest.raises(InputError, match=field) as info:
        patch_from_dict(bad)
    message = str(info.value)
    assert "\n" not in message
    assert len(message) < 200


@pytest.mark.parametrize(("bad", "field"), BAD_PATCHES[:12])
def test_render_rejects_bad_patch_dicts(bad, field):
    with pytest.raises(InputError, match=field):
        render(bad, duration_s=0.1)


def test_range_error_says_what_is_valid():
    with pytest.raises(InputError) as info:
        patch_from_dict(edited(("envelope", "sustain"), 1.5))
    assert str(info.value) == (
        "envelope.sustain: 1.5 is not valid; valid: a finite number >= 0 and <= 1 level"
    )


def test_valid_patch_fields():
    p = patch_from_dict(VALID)
    assert isinstance(p, Patch)
    assert p.algorithm == "dx7_18" and p.carrier_hz == 440.0
    assert [m.ratio for m in p.modulators] == [2.0, 1.0, 3.0, 1.0, 0.5]
    assert [m.index for m in p.modulators] == [1.5, 0.0, 0.7, 0.0, 2.0]
    assert p.envelope.sustain == 0.6
    assert patch_from_dict(p) is p


def test_missing_algorithm_defaults_to_dx7_18():
    d = edited(("algorithm",), delete=True)
    assert patch_from_dict(d).algorithm == "dx7_18"


@pytest.mark.parametrize(
    ("where", "key", "message"),
    [
        ((), "name", "name: unknown key; valid keys: algorithm, carrier_hz"),
        ((), "carrier", "carrier: unknown key; did you mean 'carrier_hz'?"),
        ((), "levle", "levle: unknown key; did you mean 'level'?"),
        (
            ("envelope",),
            "atack_s",
            "envelope.atack_s: unknown key; did you mean 'attack_s'?",
        ),
        (
            ("envelope",),
            "comment",
            "envelope.comment: unknown key; valid keys: "
            "attack_s, decay_s, sustain, release_s",
        ),
        (
            ("modulators", 2),
            "ratoi",
            "modulators[2] (M3).ratoi: unknown key; did you mean 'ratio'?",
        ),
    ],
)
def test_unknown_key_is_refused_naming_the_closest_valid_key(where, key, message):
    d = edited(("algorithm",), "dx7_18")
    target = d
    for k in where:
        target = target[k]
    target[key] = 1.0
    with pytest.raises(InputError) as info:
        patch_from_dict(d)
    assert str(info.value).startswith(message)


def test_level_is_a_valid_top_level_key():
    d = edited(("algorithm",), "dx7_18")
    d["level"] = 0.5
    assert patch_from_dict(d).level == 0.5


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("modulators", 0, "index"), 10.0),  # beyond the paper's 8, still meaningful
        (("carrier_hz",), 7000.0),  # beyond the paper's 6 kHz
        (("modulators", 1, "ratio"), 12.0),
        (("envelope", "release_s"), 2.0),
        (("envelope", "sustain"), 0.0),
        (("envelope", "sustain"), 1.0),
        (("envelope", "attack_s"), 0.0),
        (("carrier_hz",), 440),  # an int
        (("modulators", 0, "index"), np.float32(1.5)),  # a numpy scalar
    ],
)
def test_meaningful_values_outside_the_paper_range_are_accepted(path, value):
    patch = patch_from_dict(edited(path, value))
    y = render(patch, duration_s=0.5, note_off_s=0.25)
    assert y.shape == (8000,) and np.all(np.isfinite(y))


def test_index_10_renders_differently_from_index_8():
    a = render(edited(("modulators", 0, "index"), 10.0), duration_s=0.5)
    b = render(edited(("modulators", 0, "index"), 8.0), duration_s=0.5)
    assert not np.allclose(a, b, atol=1e-3)


def test_vector_round_trip():
    p = patch_from_dict(VALID)
    v = p.to_vector()
    assert v.dtype == np.float64 and v.shape == (len(P.TARGET_NAMES),)
    assert v[P.TARGET_NAMES.index("ratio_3")] == 3.0
    assert v[P.TARGET_NAMES.index("sustain")] == 0.6
    assert patch_from_vector(v) == p
    assert patch_from_vector(v, algorithm="serial").algorithm == "serial"
    with pytest.raises(InputError, match="15 values"):
        patch_from_vector(v[:14])
    v_bad = v.copy()
    v_bad[0] = np.nan
    with pytest.raises(InputError, match="carrier_hz"):
        patch_from_vector(v_bad)


# --------------------------------------------------------------------------- files


def test_save_load_round_trip(tmp_path):
    path = save_patch(VALID, tmp_path / "p.json")
    assert path == tmp_path / "p.json"
    assert json.loads(path.read_text()) == {**VALID, "level": 1.0}
    loaded = load_patch(path)
    assert loaded == patch_from_dict(VALID)
    assert loaded.to_dict() == {**VALID, "level": 1.0}
    # and again from the loaded Patch object, byte for byte
    save_patch(loaded, tmp_path / "q.json")
    assert (tmp_path / "q.json").read_bytes() == path.read_bytes()
    assert not list(tmp_path.glob("*.tmp"))
    assert np.array_equal(render(loaded, duration_s=0.5), render(VALID, duration_s=0.5))


def test_save_patch_rejects_bad_patch_and_missing_folder(tmp_path):
    with pytest.raises(InputError, match="carrier_hz"):
        save_patch(edited(("carrier_hz",), -1.0), tmp_path / "p.json")
    assert not (tmp_path / "p.json").exists()
    with pytest.raises(InputError, match="is a folder"):
        save_patch(VALID, tmp_path)
    save_patch(VALID, tmp_path / "new" / "p.json")  # missing parents are created
    assert load_patch(tmp_path / "new" / "p.json") == patch_from_dict(VALID)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"  \n\t ", "empty"),
        (b"{", "invalid JSON"),
        (b'{"carrier_hz": 440.0,}', "invalid JSON"),
        (b"carrier_hz = 440", "invalid JSON"),
        (b"\xff\xfe\x00garbage", "cannot read"),
        (b"[1, 2, 3]", "patch: expected an object"),
        (b"440", "patch: expected an object"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid JSON"),
    ],
)
def test_load_patch_rejects_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        load_patch(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("literal", "field"),
    [
        ("NaN", "carrier_hz"),
        ("Infinity", "carrier_hz"),
        ("-Infinity", "carrier_hz"),
    ],
)
def test_load_patch_rejects_nan_and_infinity_literals(tmp_path, literal, field):
    """Python's json writes NaN/Infinity (not JSON); they are rejected by name."""
    text = json.dumps(VALID).replace("440.0", literal)
    path = tmp_path / "nan.json"
    path.write_text(text)
    with pytest.raises(InputError, match=field):
        load_patch(path)


def test_load_patch_rejects_nan_in_a_nested_field(tmp_path):
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(edited(("envelope", "decay_s"), NAN)))
    assert "NaN" in path.read_text()
    with pytest.raises(InputError, match="envelope.decay_s"):
        load_patch(path)


def test_load_patch_rejects_a_huge_integer(tmp_path):
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(VALID).replace("440.0", "1" + "0" * 400))
    with pytest.raises(InputError, match="carrier_hz"):
        load_patch(path)


def test_load_patch_missing_file(tmp_path):
    with pytest.raises(MissingFileError, match="no such patch JSON file"):
        load_patch(tmp_path / "nope.json")
    with pytest.raises(FileNotFoundError):  # the standard type, for library callers
        load_patch(tmp_path / "nope.json")


def test_example_patch_loads():
    from fmlib.paths import PROJECT_ROOT

    assert load_patch(PROJECT_ROOT / "examples" / "patch.json") == patch_from_dict(
        VALID
    )


# --------------------------------------------------------------------------- level


def test_level_is_optional_and_defaults_to_one():
    assert patch_from_dict(VALID).level == 1.0
    assert patch_from_dict({**VALID, "level": 1.0}) == patch_from_dict(VALID)
    # bit-identical sound with and without an explicit level of 1.0
    a = render(VALID, duration_s=0.5)
    b = render({**VALID, "level": 1.0}, duration_s=0.5)
    assert a.tobytes() == b.tobytes()


def test_level_scales_the_output_linearly():
    a = render(VALID, duration_s=0.5)
    half = render({**VALID, "level": 0.5}, duration_s=0.5)
    np.testing.assert_allclose(half, 0.5 * a, rtol=1e-6, atol=1e-7)
    assert not np.any(render({**VALID, "level": 0.0}, duration_s=0.5))


@pytest.mark.parametrize("bad", [-0.1, 16.5, float("nan"), "1", True, None])
def test_bad_level_is_rejected_naming_the_field(bad):
    with pytest.raises(InputError, match="level"):
        patch_from_dict({**VALID, "level": bad})


def test_level_round_trips_through_json(tmp_path):
    path = save_patch({**VALID, "level": 0.25}, tmp_path / "p.json")
    assert json.loads(path.read_text())["level"] == 0.25
    assert load_patch(path).level == 0.25
    v = patch_from_dict(VALID).to_vector()
    assert patch_from_vector(v, level=0.3).level == 0.3


# --------------------------------------------------------------------------- curve


def with_curve(curve) -> dict:
    d = copy.deepcopy(VALID)
    d["envelope"]["curve"] = curve
    return d


def test_curve_is_optional_and_defaults_to_linear():
    assert patch_from_dict(VALID).envelope.curve == "linear"
    assert patch_from_dict(with_curve("linear")) == patch_from_dict(VALID)
    assert patch_from_dict(with_curve("exponential")).envelope.curve == "exponential"
    a = render(VALID, duration_s=0.5, note_off_s=0.3)
    b = render(with_curve("linear"), duration_s=0.5, note_off_s=0.3)
    assert a.tobytes() == b.tobytes()
    c = render(with_curve("exponential"), duration_s=0.5, note_off_s=0.3)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("bad", ["exp", "Linear", "", 1, None, True])
def test_bad_curve_is_refused_naming_the_valid_ones(bad):
    with pytest.raises(InputError) as info:
        patch_from_dict(with_curve(bad))
    message = str(info.value)
    assert message.startswith("envelope.curve: ")
    assert "valid: 'linear', 'exponential'" in message
    assert "\n" not in message


def test_misspelt_curve_key_is_refused():
    d = copy.deepcopy(VALID)
    d["envelope"]["curev"] = "exponential"
    with pytest.raises(InputError, match=r"envelope\.curev: unknown key; did you mean"):
        patch_from_dict(d)


def test_to_dict_writes_the_curve_only_when_not_linear(tmp_path):
    assert "curve" not in patch_from_dict(VALID).to_dict()["envelope"]
    assert "curve" not in patch_from_dict(with_curve("linear")).to_dict()["envelope"]
    path = save_patch(with_curve("exponential"), tmp_path / "p.json")
    assert json.loads(path.read_text())["envelope"]["curve"] == "exponential"
    assert load_patch(path) == patch_from_dict(with_curve("exponential"))
    # a linear patch's JSON is byte-identical to one saved before curves existed
    path = save_patch(VALID, tmp_path / "q.json")
    assert json.loads(path.read_text())["envelope"] == VALID["envelope"]
