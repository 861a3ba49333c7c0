"""fmnet design C's teacher notes: real notes in NSynth's layout, cached with their
features and analysis envelopes (fmlib.datasets.feature_cache), labelled by the table
lookup (fmlib.estimate.fmnet_table.teacher_vectors), added to training
(``train --teacher-notes``), and rendered by ``soundfont-set --plan train``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fmlib.audio import harmonic_features as HF
from fmlib.audio.audio_io import write_wav
from fmlib.errors import InputError
from fmlib.estimate import fmnet_table as FT
from fmlib.estimate import lookup as L
from fmlib.synth import params as P

#: (table entry, f0 Hz) of the rendered notes of :func:`note_folder`.
NOTES = ((1500, 220.0), (40, 130.8), (3000, 330.0), (700, 98.0))
ENVELOPE = (0.02, 0.4, 0.6, 0.3)


def _table_note(k: int, f0: float) -> np.ndarray:
    from fmlib.synth.engine import render
    from fmlib.synth.patch import patch_from_vector

    tab = L.table()
    v = [tab.carrier_multiple[k] * f0, *tab.ratios[k], *tab.indices[k], *ENVELOPE]
    return render(patch_from_vector(v, algorithm="dx7_18"))


@pytest.fixture(scope="module")
def note_folder(tmp_path_factory):
    """Four notes rendered from table entries plus one silent note, NSynth layout."""
    root = tmp_path_factory.mktemp("teacher") / "notes"
    (root / "audio").mkdir(parents=True)
    entries = {}
    for i, (k, f0) in enumerate(NOTES):
        name = f"keyboard_synthetic_{i:03d}-060-100"
        write_wav(root / "audio" / f"{name}.wav", _table_note(k, f0), P.SAMPLE_RATE)
        entries[name] = {"note_str": name, "pitch": 60, "velocity": 100}
    silent = "keyboard_synthetic_999-060-100"
    write_wav(root / "audio" / f"{silent}.wav", np.zeros(64_000, np.float32), 16_000)
    entries[silent] = {"note_str": silent, "pitch": 60, "velocity": 100}
    (root / "examples.json").write_text(json.dumps(entries))
    return root


def test_note_features_equal_the_analysis_and_resume(
    note_folder, tmp_path, monkeypatch
):
    from fmlib.audio.analysis import analyze, fit_envelope, frame_rms
    from fmlib.datasets import feature_cache as C
    from fmlib.datasets.nsynth import read_note

    monkeypatch.setattr(C, "CHUNK", 2)
    got = C.ensure_note_features(note_folder, tmp_path / "c", progress=False)
    assert len(got.note_str) == 5 and list(got.note_str) == sorted(got.note_str)
    assert got.features.shape == (5, HF.N_FEATURES) and got.envelope.shape == (5, 4)
    for i, name in enumerate(got.note_str[:4]):
        x = read_note(note_folder / "audio" / f"{name}.wav")
        a = analyze(x)
        assert got.pitch[i, 0] == a.f0_hz
        np.testing.assert_array_equal(got.features[i], HF.note_features(x, a.f0_hz))
        e, _ = fit_envelope(frame_rms(x), n_samples=x.size, curves=("exponential",))
        np.testing.assert_allclose(
            got.envelope[i], (e.attack_s, e.decay_s, e.sustain, e.release_s)
        )
    assert np.all(np.isnan(got.envelope[4])) and np.isnan(got.pitch[4, 0])
    # the rendered envelope comes back (sustain and the decay's scale)
    assert got.envelope[0, 2] == pytest.approx(ENVELOPE[2], abs=0.1)
    assert len(list((tmp_path / "c").glob("envelope_*.npy"))) == 3  # chunks of 2

    def fail(*_):
        raise AssertionError("recomputed a cached chunk")

    monkeypatch.setattr(C, "compute_features", fail)
    again = C.ensure_note_features(note_folder, tmp_path / "c", progress=False)
    np.testing.assert_array_equal(again.features, got.features)
    np.testing.assert_array_equal(again.envelope, got.envelope)
    # a dataset's cache folder is not a notes cache, and another content is refused
    (tmp_path / "c2").mkdir()
    saved = json.loads((tmp_path / "c" / "features.json").read_text())
    (tmp_path / "c2" / "features.json").write_text(
        json.dumps({**saved, "dataset_config_sha256": "0" * 64})
    )
    with pytest.raises(InputError, match="another dataset"):
        C.ensure_note_features(note_folder, tmp_path / "c2", progress=False)
    del saved["source"]
    (tmp_path / "c2" / "features.json").write_text(json.dumps(saved))
    with pytest.raises(InputError, match="another dataset"):
        C.ensure_note_features(note_folder, tmp_path / "c2", progress=False)


def test_teacher_vectors_are_the_lookups_patch_with_a_clipped_envelope():
    from fmlib.audio.analysis import estimate_f0

    xs = [_table_note(k, f0) for k, f0 in NOTES[:2]]
    f0 = np.array([estimate_f0(x).f0_hz for x in xs])
    feats = np.stack([HF.note_features(x, f) for x, f in zip(xs, f0, strict=True)])
    env = np.array([[0.01, 10.0, 0.5, 3.0], [0.0001, 0.1, 0.95, 0.2]])
    v = FT.teacher_vectors(feats, f0, env)
    assert v.shape == (2, len(P.TARGET_NAMES))
    entries, _ = L.nearest_entries(feats[:, : HF.SLICES["wide"].stop], f0)
    np.testing.assert_array_equal(
        v, FT.entry_vectors(entries[:, 0], f0, np.clip(env, *_env_ranges()))
    )
    tab = L.table()
    # a note rendered from entry k is taught entry k's spectrum (its own carrier
    # multiple and the same ratios, up to the table's interchangeable twins)
    k = NOTES[0][0]
    carrier = tab.carrier_multiple[k] * NOTES[0][1]
    assert v[0, 0] == pytest.approx(carrier, rel=2e-3)
    assert v[0, 12] == P.ENVELOPE_PARAMS[1].high  # decay 10 s -> the head's longest
    assert v[1, 11] == P.ENVELOPE_PARAMS[0].low and v[1, 13] == 0.9
    assert FT.teacher_vectors(feats[:0], f0[:0], env[:0]).shape == (0, 15)


def _env_ranges():
    lo = np.array([s.low for s in P.ENVELOPE_PARAMS])
    hi = np.array([s.high for s in P.ENVELOPE_PARAMS])
    return lo, hi


@pytest.mark.slow
def test_design_c_trains_with_teacher_notes(tiny_dataset, note_folder, tmp_path):
    from fmlib.estimate.fmnet import train_fmnet

    config = {"hidden": [16], "epochs": 2, "batch_size": 16, "head": "table"}
    config["augment_mix"] = 0.0

    def train(out="m", **options):
        return train_fmnet(
            tiny_dataset,
            tiny_dataset,
            tmp_path / out,
            seed=0,
            features_dir=tmp_path / "f",
            progress=False,
            **{"config": config, **options},
        )

    meta = train(teacher_notes=note_folder)
    assert meta["complete"] and meta["n_teacher_notes"] == 4  # the silent one left
    assert meta["teacher_notes"] == str(note_folder.resolve())
    assert (tmp_path / "f" / f"notes-{note_folder.name}" / "features.json").is_file()
    # 64 notes, 4 teachers: the split holds 68 notes (the tracker keeps every one)
    assert meta["n_train"] + meta["n_val"] == 64 + 4
    # the same folder reruns as finished; without the teacher it is another model
    assert train(teacher_notes=note_folder) == meta
    with pytest.raises(InputError, match="trained otherwise"):
        train()
    with pytest.raises(InputError, match="only design C"):
        train("a", config={"hidden": [16]}, teacher_notes=note_folder)
    assert not (tmp_path / "a").exists()


def test_train_command_checks_teacher_notes(
    tiny_dataset, note_folder, tmp_path, capsys
):
    from fmlib.cli import main

    base = ["train", "--data", str(tiny_dataset), "--test-data", str(tiny_dataset)]
    cases = [
        (["--arch", "fmnet", "--teacher-notes", str(note_folder)], "fmnet-table"),
        (["--arch", "fmnet-table", "--teacher-notes", str(tmp_path / "no")], "no such"),
        (["--arch", "fmnet-table", "--teacher-notes", str(tiny_dataset)], "examples"),
    ]
    for extra, word in cases:
        out = tmp_path / "out"
        assert main([*base, *extra, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and word in err[0], err
        assert not out.exists()


def test_train_plan_covers_every_instrument_and_refuses_the_eval_soundfont(
    tmp_path, monkeypatch, capsys
):
    from fmlib import cli
    from fmlib.datasets import soundfont as S

    plan = S._note_plan(1, "train")
    programs = {p for ps in S.FAMILY_PROGRAMS.values() for p in ps}
    assert {n["gm_program"] for n in plan} == programs
    assert {n["pitch"] for n in plan} == set(S.TRAIN_PITCHES)
    assert len(plan) == len(programs) * len(S.TRAIN_PITCHES) * len(S.VELOCITIES)
    assert len({n["note_str"] for n in plan}) == len(plan)
    assert S._note_plan(1) == S._note_plan(1, "eval")  # the evaluation set unchanged
    with pytest.raises(InputError, match="TimGM6mb"):
        S.build_soundfont_set(
            tmp_path / "t", soundfont=S.timgm6mb_path(), plan="train", progress=False
        )
    monkeypatch.setattr(S, "FLUIDR3_PATHS", (tmp_path / "none.sf2",))
    with pytest.raises(InputError, match="fluid-soundfont-gm"):
        S.build_soundfont_set(tmp_path / "t", plan="train", progress=False)
    with pytest.raises(InputError, match="plan 'x'"):
        S.build_soundfont_set(tmp_path / "t", plan="x", progress=False)
    assert not (tmp_path / "t").exists()
    code = cli.main(["soundfont-set", "--plan", "train", "--out", str(tmp_path / "t")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "fluid-soundfont-gm" in err[0]
    assert not (tmp_path / "t").exists()


def test_analysis_envelopes_round_trip_unclipped_and_decode_exponential():
    from fmlib.estimate import fmnet as F

    paper, wide = F.env_specs("paper"), F.env_specs("analysis")
    assert paper == P.ENVELOPE_PARAMS
    assert [s.name for s in wide] == [s.name for s in paper]
    assert wide[1].high == 20.0 and wide[1].scale == "log" and wide[2].high == 1.0
    v = np.zeros((2, len(P.TARGET_NAMES)))
    v[:, 11:] = [[0.002, 10.0, 0.97, 3.0], [0.3, 0.25, 0.5, 0.4]]
    for name, specs in (("analysis", wide), ("paper", paper)):
        u = F.adsr_targets(v, envelope=name)
        assert u.dtype == np.float32 and np.all((u >= 0) & (u <= 1))
        back = F._decode_adsr(u, envelope=name)
        clipped = np.clip(v[:, 11:], [s.low for s in specs], [s.high for s in specs])
        np.testing.assert_allclose(back, clipped, rtol=1e-5)
    # the analysis ranges keep a real note's 10 s decay; the paper's cut it to 0.6 s
    wide_back = F._decode_adsr(
        F.adsr_targets(v, envelope="analysis"), envelope="analysis"
    )
    assert wide_back[0, 1] == pytest.approx(10.0, rel=1e-5)
    assert F.env_curve("analysis") == "exponential" and F.env_curve() == "linear"
    outputs = {
        "entry": np.eye(2)[[1, 0]],
        "adsr": F.adsr_targets(v, envelope="analysis"),
    }
    got = F.decode(outputs, [200.0, 300.0], [], classes=[5, 9], envelope="analysis")
    assert got[0, 12] == pytest.approx(10.0, rel=1e-5)
    np.testing.assert_allclose(got[:, 1:6], L.table().ratios[[9, 5]])
    with pytest.raises(InputError, match="envelope"):
        F.merge_config({"envelope": "dx7"})


@pytest.mark.slow
def test_an_analysis_envelope_model_predicts_exponential_patches(
    tiny_dataset, note_folder, tmp_path
):
    from fmlib.datasets.dataset_reader import open_dataset
    from fmlib.estimate.fmnet import train_fmnet
    from fmlib.estimate.predict import load_predictor

    config = {"hidden": [16], "epochs": 2, "batch_size": 16, "head": "table"}
    meta = train_fmnet(
        tiny_dataset,
        tiny_dataset,
        tmp_path / "m",
        config={**config, "envelope": "analysis"},
        seed=0,
        features_dir=tmp_path / "f",
        teacher_notes=note_folder,
        progress=False,
    )
    assert meta["config"]["envelope"] == "analysis"
    pred = load_predictor(tmp_path / "m")
    assert pred.envelope == "analysis"
    patches = pred.predict_patches(open_dataset(tiny_dataset).read([0, 1]))
    assert {p.envelope.curve for p in patches} == {"exponential"}


def test_design_a_targets_follow_the_envelope_option():
    from fmlib.estimate import fmnet as F

    v = np.zeros((1, len(P.TARGET_NAMES)))
    v[0] = [220.0, 1, 2, 1, 1, 1, 1.0, 0.5, 0, 0, 0, 0.01, 5.0, 0.5, 0.3]
    for name in ("paper", "analysis"):
        t = F.make_targets(v, [220.0], [1.0], algorithm="dx7_18", envelope=name)
        back = F._decode_adsr(t["adsr"], envelope=name)
        assert back[0, 1] == pytest.approx(
            min(5.0, F.env_specs(name)[1].high), rel=1e-5
        )
