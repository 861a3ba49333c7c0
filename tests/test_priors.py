"""Carrier priors: the paper's is byte-for-byte what it was, the musical one stays
inside MIDI 21-108, both are reproducible per (seed, note), and a dataset records and
checks its prior."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from fmlib.cli import main
from fmlib.datasets import dataset as D
from fmlib.datasets.sampler import (
    PRIORS,
    SamplerConfig,
    check_prior,
    sample_note,
    sample_vectors,
)
from fmlib.errors import InputError
from fmlib.synth import params as P

# Computed on main at 9ecdaad, before priors existed (seed 0): the first note's 15
# parameters as their repr, the sha256 of notes 0-99's float64 bytes, of the params.csv
# of a 100-note dataset, and of the JSON of its configuration (what the manifest
# records and reuse compares). The audio follows from the vectors (the renderer is
# unchanged); its hash is not pinned because float64 sin may differ by an ulp between
# CPUs' SIMD paths.
PAPER_NOTE_0 = (
    "5658.766566239618 8.0 0.125 1.0 6.0 1.0 0.23323396637866262 1.0004198830268556 "
    "2.111716107703157 0.23743411726337182 1.6764671254130585 0.11487871037033459 "
    "0.5258195802634709 0.7104850789533375 0.32168633695006116"
)
PAPER_CARRIERS_0_2 = (5658.766566239618, 4069.6372047111095, 5032.861464783818)
PAPER_VECTORS_100_SHA256 = (
    "4a4413fda09758c92244f3a1e18b8a5a38dbe5c2ea1c7151e8f55f9206e5e777"
)
PAPER_PARAMS_CSV_100_SHA256 = (
    "75c33249019263891a184bc427c5d37baef5af4c42240c8ffa88108e647ca8c6"
)
PAPER_CONFIG_100_SHA256 = (
    "305537c34d52bf9cd1af3973787b948de9b798ae1af7bbfd5b4f73807a99157f"
)

MIDI_LO, MIDI_HI = P.MUSICAL_MIDI_RANGE


@pytest.mark.parametrize(
    "config", [None, SamplerConfig(), SamplerConfig(prior="paper")]
)
def test_paper_prior_is_unchanged(config):
    v = sample_vectors(100, seed=0, config=config)
    assert " ".join(repr(float(x)) for x in v[0]) == PAPER_NOTE_0
    assert tuple(v[:3, 0]) == PAPER_CARRIERS_0_2
    assert hashlib.sha256(v.tobytes()).hexdigest() == PAPER_VECTORS_100_SHA256


def test_paper_dataset_config_and_params_are_unchanged():
    sampler = SamplerConfig(prior="paper")
    assert "prior" not in sampler.to_dict()  # absent key: a pre-prior manifest
    cfg = D.dataset_config(n=100, seed=0, sampler=sampler)
    text = json.dumps(cfg, indent=2).encode()
    assert hashlib.sha256(text).hexdigest() == PAPER_CONFIG_100_SHA256
    sha = D._params_sha256(n=100, seed=0, sampler=sampler, size=256)
    assert sha == PAPER_PARAMS_CSV_100_SHA256


def test_prior_validation(tmp_path):
    assert PRIORS == ("paper", "musical")
    for bad in ("Musical", "", "jazz", None, 1):
        with pytest.raises(InputError, match="valid: paper, musical"):
            check_prior(bad)
        with pytest.raises(InputError, match="unknown prior"):
            SamplerConfig(prior=bad)
    with pytest.raises(InputError, match="unknown prior"):
        SamplerConfig.from_dict({"prior": "jazz"})
    with pytest.raises(InputError, match="contradicts"):
        D.generate_dataset(
            tmp_path / "d", n=1, seed=0, sampler=SamplerConfig(), prior="musical"
        )


def test_prior_sets_the_default_carrier_range():
    assert SamplerConfig().carrier_range == (20.0, 6000.0)
    lo, hi = SamplerConfig(prior="musical").carrier_range
    assert lo == 27.5 and hi == pytest.approx(4186.009, abs=1e-3)
    assert P.CARRIER.low <= lo and hi <= P.CARRIER.high
    # an explicit range wins over the prior's default
    assert SamplerConfig(prior="musical", carrier_range=(100.0, 200.0)).carrier_range
    cfg = SamplerConfig(prior="musical", carrier_range=(100.0, 200.0))
    assert SamplerConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert SamplerConfig.from_dict(SamplerConfig().to_dict()) == SamplerConfig()


@pytest.fixture(scope="module")
def musical() -> np.ndarray:
    return sample_vectors(20_000, seed=5, config=SamplerConfig(prior="musical"))


def test_musical_carriers_within_midi_21_108(musical):
    hz = musical[:, 0]
    lo, hi = SamplerConfig(prior="musical").carrier_range
    assert hz.min() >= lo and hz.max() <= hi
    midi = P.hz_to_midi(hz)
    assert midi.min() >= MIDI_LO - 1e-9 and midi.max() <= MIDI_HI + 1e-9
    # and it fills the range: uniform in MIDI note number
    assert midi.min() < MIDI_LO + 0.05 and midi.max() > MIDI_HI - 0.05
    counts, _ = np.histogram(midi, bins=8, range=(MIDI_LO, MIDI_HI))
    expected = len(midi) / 8
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected)), counts


def test_musical_keeps_the_other_parameters_of_the_paper(musical):
    """Only the carrier changes: the same stream gives the same ratios, indices and
    envelope under both priors."""
    paper = sample_vectors(len(musical), seed=5)
    assert np.array_equal(paper[:, 1:], musical[:, 1:])
    assert not np.any(paper[:, 0] == musical[:, 0])


def test_musical_is_deterministic_per_seed_and_note():
    cfg = SamplerConfig(prior="musical")
    block = sample_vectors(10, seed=7, start=40, config=cfg)
    for i in (0, 3, 9):
        assert np.array_equal(block[i], sample_note(7, 40 + i, config=cfg))
    again = sample_vectors(10, seed=7, start=40, config=SamplerConfig(prior="musical"))
    assert again.tobytes() == block.tobytes()
    other = sample_vectors(10, seed=8, start=40, config=cfg)
    assert not np.any(other[:, 0] == block[:, 0])


def test_manifest_records_the_prior(tmp_path):
    out = tmp_path / "musical"
    D.generate_dataset(out, n=3, seed=2, prior="musical", workers=1, progress=False)
    m = json.loads((out / D.MANIFEST_NAME).read_text())
    assert m["config"]["sampler"]["prior"] == "musical"
    ds = D.open_dataset(out)
    assert ds.prior == "musical"
    expected = sample_vectors(3, seed=2, config=SamplerConfig(prior="musical"))
    assert np.array_equal(ds.vectors(), expected)
    # the same prior is reused; the paper prior in the same folder is refused
    assert D.ensure_dataset(out, n=3, seed=2, prior="musical", progress=False) == out
    assert D.open_dataset(out).manifest_hash == ds.manifest_hash
    with pytest.raises(InputError, match="prior is 'musical', asked 'paper'"):
        D.generate_dataset(out, n=3, seed=2, workers=1, progress=False)
    with pytest.raises(InputError, match="another configuration"):
        D.ensure_dataset(out, n=3, seed=2, prior="paper", workers=1, progress=False)
    # with force, it is regenerated under the asked prior
    D.ensure_dataset(out, n=3, seed=2, force=True, workers=1, progress=False)
    again = D.open_dataset(out)
    assert again.prior == "paper" and "prior" not in again.manifest["config"]["sampler"]
    assert np.array_equal(again.vectors(), sample_vectors(3, seed=2))


def test_cli_prior(tmp_path, capsys):
    out = tmp_path / "d"
    argv = ["generate", "--n", "2", "--out", str(out), "--workers", "1", "--quiet"]
    assert main([*argv, "--prior", "musical"]) == 0
    assert "prior musical" in capsys.readouterr().out
    assert D.open_dataset(out).prior == "musical"
    assert main(argv) == 2  # the default prior is the paper's: another config
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "prior is 'musical', asked 'paper'" in err[0], err
