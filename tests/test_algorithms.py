"""Operator graphs: which modulators are interchangeable, read from the graph."""

from __future__ import annotations

import numpy as np
import pytest

from fmlib.errors import InputError
from fmlib.estimate.model import canonicalize
from fmlib.synth import params as P
from fmlib.synth.algorithms import ALGORITHMS, Algorithm, get_algorithm
from fmlib.synth.engine import render
from fmlib.synth.patch import patch_from_vector


def test_serial_has_no_interchangeable_modulators():
    assert get_algorithm("serial").interchangeable() == ()


def test_dx7_18_m1_m2_are_interchangeable():
    # M3 also modulates the carrier, but M4 modulates it: not a leaf, not grouped
    assert get_algorithm("dx7_18").interchangeable() == (("M1", "M2"),)


def test_synthetic_graph_groups_leaves_by_target():
    alg = Algorithm(
        "synthetic",
        (("M5", "M2"), ("M4", "M2"), ("M3", "C"), ("M2", "C"), ("M1", "C")),
        "M4, M5 -> M2; M1, M2, M3 -> carrier",
    )
    # M2 has sources, so only M1 and M3 group at the carrier; M4 and M5 at M2
    assert alg.interchangeable() == (("M1", "M3"), ("M4", "M5"))
    assert alg.target("M4") == "M2" and alg.target("C") is None


def test_every_group_is_truly_interchangeable(rng):
    """Swapping a group's (ratio, index) pairs renders the same audio, for every
    registered algorithm: the property the grouping claims."""
    v = np.array(
        [440.0, 1.0, 2.0, 3.0, 0.5, 1.5, 1.2, 0.4, 0.8, 1.1, 0.3]
        + [0.05, 0.3, 0.6, 0.4]
    )
    assert len(v) == len(P.TARGET_NAMES)
    for name, alg in ALGORITHMS.items():
        for group in alg.interchangeable():
            a, b = (int(op[1:]) for op in group[:2])
            w = v.copy()
            for stem in ("ratio", "index"):
                ia = P.TARGET_NAMES.index(f"{stem}_{a}")
                ib = P.TARGET_NAMES.index(f"{stem}_{b}")
                w[ia], w[ib] = v[ib], v[ia]
            x = render(patch_from_vector(v, algorithm=name))
            y = render(patch_from_vector(w, algorithm=name))
            np.testing.assert_allclose(x, y, atol=1e-5)


def test_canonicalize_uses_the_graph_for_a_group_of_three(monkeypatch):
    alg = Algorithm(
        "three_leaves",
        (("M5", "M4"), ("M4", "C"), ("M3", "C"), ("M2", "C"), ("M1", "C")),
        "M1, M2, M3 -> carrier; M5 -> M4 -> carrier",
    )
    monkeypatch.setitem(ALGORITHMS, alg.name, alg)
    assert alg.interchangeable() == (("M1", "M2", "M3"),)
    v = np.zeros(len(P.TARGET_NAMES))
    ratio = [P.TARGET_NAMES.index(f"ratio_{k}") for k in (1, 2, 3, 4)]
    index = [P.TARGET_NAMES.index(f"index_{k}") for k in (1, 2, 3, 4)]
    v[ratio] = [3.0, 1.0, 1.0, 0.5]
    v[index] = [0.1, 0.9, 0.2, 7.0]
    c = canonicalize(v, algorithm=alg.name)
    np.testing.assert_array_equal(c[ratio], [1.0, 1.0, 3.0, 0.5])  # M4 untouched
    np.testing.assert_array_equal(c[index], [0.2, 0.9, 0.1, 7.0])


def test_canonicalize_refuses_unknown_algorithm():
    with pytest.raises(InputError, match="unknown algorithm"):
        canonicalize(np.zeros(len(P.TARGET_NAMES)), algorithm="nope")
