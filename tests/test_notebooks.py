"""The notebooks end to end (smoke profile, Papermill, temporary folders) and the
notebooks' helpers: figure saving, sideband measurement, operator-graph layout, the
synthesizer explorer and the re-synthesis panel driven without a browser."""

from __future__ import annotations

import io
import json
import math
import subprocess

import nbformat
import numpy as np
import pandas as pd
import pytest
import scipy.special
import soundfile as sf

from fmlib import files
from fmlib.errors import InputError
from fmlib.notebook.plots import algorithm_layout, measure_sidebands, save_figure
from fmlib.notebook.widgets import resynthesis_panel, synth_explorer
from fmlib.synth import params as P
from fmlib.synth.algorithms import ALGORITHMS, CARRIER
from fmlib.synth.engine import render
from fmlib.synth.patch import load_patch

ONE_M1 = {
    "algorithm": "dx7_18",
    "carrier_hz": 2000.0,
    "modulators": [{"ratio": 0.125, "index": 2.4}] + [{"ratio": 1.0, "index": 0.0}] * 4,
    "envelope": {"attack_s": 0.005, "decay_s": 0.02, "sustain": 1.0, "release_s": 0.05},
}


# --------------------------------------------------------------- plots
def test_save_figure_writes_png_atomically_and_checks_names(tmp_path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = save_figure(fig, "my_fig", out_dir=tmp_path / "new")
    assert path == tmp_path / "new" / "my_fig.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["my_fig.png"]
    assert not plt.fignum_exists(fig.number)  # closed
    for bad in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(InputError):
            save_figure(plt.figure(), bad, out_dir=tmp_path)


def test_measured_sidebands_match_bessel_functions():
    orders = list(range(-4, 5))
    for beta in (0.5, 2.4, 4.0):
        audio = render(
            {
                **ONE_M1,
                "modulators": [{"ratio": 0.125, "index": beta}]
                + ONE_M1["modulators"][1:],
            },
            duration_s=1.0,
            note_off_s=2.0,
        )
        got = measure_sidebands(
            audio, carrier_hz=2000.0, modulator_hz=250.0, orders=orders
        )
        want = np.abs(scipy.special.jv(orders, beta))
        strong = want > 0.01
        err_db = 20 * np.log10(got[strong] / want[strong])
        assert np.max(np.abs(err_db)) < 0.1, (beta, err_db)
    with pytest.raises(InputError, match="outside"):
        measure_sidebands(audio, carrier_hz=2000.0, modulator_hz=250.0, orders=[-8])


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_algorithm_layout_puts_every_modulator_above_its_target(name):
    pos = algorithm_layout(name)
    assert set(pos) == {CARRIER, "M1", "M2", "M3", "M4", "M5"}
    assert pos[CARRIER][1] == 0
    for src, dst in ALGORITHMS[name].edges:
        assert pos[src][1] == pos[dst][1] + 1
    assert len(set(pos.values())) == 6  # no two operators on the same spot


# --------------------------------------------------------------- widgets
def test_explorer_sliders_follow_the_parameter_spec():
    ex = synth_explorer(patch=ONE_M1)
    assert list(ex.sliders) == list(P.TARGET_NAMES)
    for name, slider in ex.sliders.items():
        spec = P.PARAMS[name]
        if spec.scale == "log":
            assert type(slider).__name__ == "FloatLogSlider"
            assert math.isclose(10**slider.min, spec.low)
            assert math.isclose(10**slider.max, spec.high)
        else:
            # indices reach the renderer's valid maximum (tests/test_widgets.py)
            high = spec.valid_high if name.startswith("index_") else spec.high
            assert (slider.min, slider.max) == (spec.low, high)
    assert set(ex.algorithm.options) == set(ALGORITHMS)


def test_explorer_renders_what_the_controls_say_and_saves(tmp_path):
    ex = synth_explorer(patch=ONE_M1, out_dir=tmp_path, duration_s=1.0, note_off_s=0.5)
    first_png, first_wav = bytes(ex.image.value), bytes(ex.player.value)
    assert first_wav[:4] == b"RIFF" and first_png[:4] == b"\x89PNG"
    ex.sliders["index_3"].value = 3.0
    ex.sliders["ratio_3"].value = 2.0
    ex.sliders["index_2"].value = 1.0  # so that M3 is heard in "serial" as well
    ex.algorithm.value = "serial"
    patch = ex.current_patch()
    assert patch.algorithm == "serial" and patch.modulators[2].index == 3.0
    np.testing.assert_array_equal(
        ex.audio, render(patch, duration_s=1.0, note_off_s=0.5)
    )
    assert bytes(ex.player.value) != first_wav
    assert bytes(ex.image.value) != first_png
    ex.snap.value = True
    ex.sliders["ratio_1"].value = 2.9
    assert ex.sliders["ratio_1"].value == 3.0
    ex.name.value = "mine"
    ex.save_patch_button.click()
    ex.save_wav_button.click()
    assert load_patch(tmp_path / "mine.json") == ex.current_patch()
    audio, sr = sf.read(tmp_path / "mine.wav", dtype="float32")
    assert sr == P.SAMPLE_RATE and audio.shape == (16000,)
    np.testing.assert_allclose(audio, ex.audio, atol=1 / 32768 + 1e-7)
    ex.name.value = "../escape"
    ex.save_wav_button.click()
    assert ex.status.value.startswith("error:")
    assert not (tmp_path.parent / "escape.wav").exists()


def test_resynthesis_panel_prepares_predicts_and_plays(
    tmp_path, upload_entry, fixed_predictor
):
    pytest.importorskip("fmlib.estimate.predict")
    predictor = fixed_predictor(ONE_M1)
    panel = resynthesis_panel(predictor, out_dir=tmp_path)
    t = np.arange(44100 * 2) / 44100
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 220 * t)] * 2, axis=1)
    buf = io.BytesIO()
    sf.write(buf, stereo, 44100, format="WAV", subtype="PCM_16")
    # the FileUpload widget's value, as the browser would set it (ipywidgets 8)
    panel.upload.value = (upload_entry("tone.wav", buf.getvalue()),)
    assert panel.patch == predictor.patch
    assert predictor.seen[0].shape == (1, 64000)
    assert panel.original.shape == (64000,)
    np.testing.assert_array_equal(panel.resynthesis, render(predictor.patch))
    assert bytes(panel.player_original.value[:4]) == b"RIFF"
    assert bytes(panel.player_resynthesis.value[:4]) == b"RIFF"
    assert json.loads(panel.patch_text.value) == predictor.patch.to_dict()
    assert "tone.wav" in panel.status.value
    json_path, wav_path = panel.save()
    assert load_patch(json_path) == predictor.patch and wav_path.is_file()
    with pytest.raises(InputError, match="not a readable audio file"):
        panel.load_bytes(b"not audio at all", name="junk.wav")
    panel.upload.value = (upload_entry("junk.wav", b"junk"),)
    assert panel.status.value.startswith("error: junk.wav")


# --------------------------------------------------------------- notebooks
def _snapshot():
    from fmlib.paths import FIGURES_DIR, TABLES_DIR

    return {
        p: p.stat().st_mtime_ns
        for d in (FIGURES_DIR, TABLES_DIR)
        if d.is_dir()
        for p in d.iterdir()
    }


@pytest.mark.notebooks
@pytest.mark.slow
def test_every_notebook_runs_on_the_smoke_profile(tmp_path, nsynth_dev_dir):
    from fmlib.notebook.reproduce import reproduce

    out, work, runs = tmp_path / "out", tmp_path / "work", tmp_path / "runs"
    before = _snapshot()
    result = reproduce(
        "smoke", runs_dir=runs, output_dir=out, work_dir=work, progress=False
    )
    assert result.failed is None, str(result.failed)
    run_dir = runs / "smoke"
    assert len(result.seconds) == 7
    for name in result.seconds:
        nb = nbformat.read(run_dir / name, as_version=4)
        errors = [
            o
            for c in nb.cells
            if c.cell_type == "code"
            for o in c.outputs
            if o.output_type == "error"
        ]
        assert not errors, name
    assert json.loads((run_dir / "timings.json").read_text())["failed"] is None

    figures = {p.name for p in (out / "figures").glob("*.png")}
    assert {
        "synth_time_frequency.png",
        "synth_sidebands_bessel.png",
        "synth_ratios.png",
        "synth_adsr.png",
        "synth_algorithms.png",
        "dataset_histograms.png",
        "fig01_time_domain.png",
        "fig02_frequency_domain.png",
        "fig03_sampling.png",
        "fig04_adsr.png",
        "fig05_hz_vs_mel.png",
        "fig06_hadamard.png",
        "fig07_training_scheme.png",
        "fig08_feature_extractor.png",
        "fig09_regressor.png",
        "fig10_mse.png",
        "fig11_mae.png",
        "resynthesis_spectrograms.png",
        "sound_matching_spectrograms.png",
        "fmnet_scatter.png",
    } | NOTEBOOK_01_FIGURES <= figures
    tables = out / "tables"

    def table(stem, **kw):
        assert (tables / f"{stem}.md").is_file()
        return pd.read_csv(tables / f"{stem}.csv", **kw)

    side = table("synth_sidebands")
    strong = side[side["bessel_abs"] > 0.01]
    assert len(strong) > 10 and strong["error_db"].abs().max() < 0.1

    assert len(table("dataset_proportions")) > 0
    scores = table("fmnet_test_scores", index_col=0)
    assert list(scores.columns) == [
        f"{m} ({mode})" for m in ("paper CNN", "fmnet") for mode in ("patch", "raw")
    ]
    single = table("fmnet_single_pass_nsynth-dev", index_col=0)
    assert single.loc["Notes", "fmnet"] == 12  # smoke: EVAL_LIMIT
    assert len(table("dataset_aliasing")) > 0

    t4 = table("table4_last_epochs")
    assert len(t4) == 2  # EPOCHS 2 in the smoke profile
    assert np.isfinite(t4.drop(columns="epoch").to_numpy(float)).all()
    t5 = table("table5_test_metrics").set_index("metric")
    assert np.isfinite(t5["ours"]).all() and (t5["ours"] > 0).all()
    assert math.isclose(
        t5.loc["RMSE", "ours"] ** 2, t5.loc["MSE", "ours"], rel_tol=1e-6
    )

    t6 = table("table6_means", index_col=0)
    assert np.isfinite(t6.loc[["FFT", "STFT", "Log Mel (raw)"]].to_numpy(float)).all()
    t8 = table("table8_family_means", index_col=0)
    assert len(t8) == 11 and t8["n"].sum() == 12  # EVAL_LIMIT 12, round-robin
    vs = table("table6_vs_paper")
    assert list(vs["paper_baseline"].round(3)) == [33508.78, 7290.362, 184.872, 0.011]
    # the 440 Hz baseline on real NSynth notes sits near the paper's (calibration)
    assert np.allclose(vs["ours_baseline"], vs["paper_baseline"], rtol=0.1)
    assert (work / "models" / "cnn-smoke" / "model.keras").is_file()

    # 06: match next to the paper CNN and the baselines, 12 dev notes
    cmp = table("sound_matching_nsynth-dev", index_col=0)
    assert {"paper_cnn", "match", "sine_440", "sine_pitch_env", "const_patch"} <= set(
        cmp.columns
    )
    assert cmp.loc["Notes", "match"] == 12
    lm = cmp.loc["Log Mel (raw)"]
    # even at the smoke budget the match beats the 440 Hz sine and the paper CNN
    assert lm["match"] < lm["paper_cnn"] and lm["match"] < lm["sine_440"]
    assert len(table("sound_matching_nsynth-dev_families")) == 11
    assert _snapshot() == before, "the smoke run touched the committed results"


# --------------------------------------------------------------- a hand run
#: What notebook 01 writes (figures and tables folders of OUTPUT_DIR).
NOTEBOOK_01_FIGURES = {
    "synth_time_frequency.png",
    "teach_pm_vs_fm.png",
    "synth_sidebands_bessel.png",
    "teach_beta_sweep.png",
    "synth_ratios.png",
    "teach_carson.png",
    "teach_aliasing.png",
    "synth_adsr.png",
    "synth_algorithms.png",
}
NOTEBOOK_01_TABLES = {"synth_sidebands", "teach_carson", "teach_aliasing"}


def _committed_state():
    """sha256, inode and mtime of every file in the committed results folders (an
    atomic rewrite with the same bytes still changes the inode), and ``git status``
    of the folders a notebook could touch (None outside a git checkout)."""
    from fmlib.paths import FIGURES_DIR, PROJECT_ROOT, RESULTS_DIR

    hashes = {
        p: (files.file_sha256(p), p.stat().st_ino, p.stat().st_mtime_ns)
        for d in (FIGURES_DIR, RESULTS_DIR)
        for p in sorted(d.rglob("*"))
        if p.is_file()
    }
    try:
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all", "--"]
            + ["figures", "results", "notebooks"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        status = None
    return hashes, status


@pytest.mark.notebooks
@pytest.mark.slow
def test_notebook_01_run_by_hand_changes_no_committed_file(tmp_path, monkeypatch):
    """ "Run all" in JupyterLab: no parameters injected, cwd notebooks/. Everything
    goes to the interactive folder (pointed at tmp_path here through
    FMLIB_INTERACTIVE_DIR, which the kernel inherits); no committed file changes."""
    import papermill

    from fmlib.paths import NOTEBOOKS_DIR

    interactive = tmp_path / "interactive"
    monkeypatch.setenv("FMLIB_INTERACTIVE_DIR", str(interactive))
    before = _committed_state()
    out = tmp_path / "01_run.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS_DIR / "01_synth_exploration.ipynb"),
        str(out),
        kernel_name="python3",
        cwd=str(NOTEBOOKS_DIR),
        progress_bar=False,
    )
    assert _committed_state() == before, "a hand run changed a committed file"
    assert {p.name for p in (interactive / "figures").iterdir()} == NOTEBOOK_01_FIGURES
    assert {p.name for p in (interactive / "tables").iterdir()} == {
        f"{stem}{ext}" for stem in NOTEBOOK_01_TABLES for ext in (".csv", ".md")
    }
    side = pd.read_csv(interactive / "tables" / "synth_sidebands.csv")
    assert side[side["bessel_abs"] > 0.01]["error_db"].abs().max() < 0.1
    # byte-stable: the kernel's table is the same bytes as one written here
    from fmlib.notebook.reproduce import notebook_parameters
    from fmlib.notebook.teaching import sideband_table

    p = notebook_parameters(NOTEBOOKS_DIR / "01_synth_exploration.ipynb")
    again = sideband_table(
        p["BETAS"],
        carrier_hz=p["CARRIER_HZ"],
        ratio=p["RATIO"],
        max_order=p["MAX_ORDER"],
    )
    csv, md = files.write_table(again, tmp_path / "again", "synth_sidebands")
    assert csv.read_bytes() == (interactive / "tables" / csv.name).read_bytes()
    assert md.read_bytes() == (interactive / "tables" / md.name).read_bytes()
    carson = pd.read_csv(interactive / "tables" / "teach_carson.csv")
    assert (carson["measured_98_hz"] == carson["bessel_98_hz"]).all()
    # no stray repr (e.g. PosixPath) printed after a figure
    nb = nbformat.read(out, as_version=4)
    texts = [
        o.get("data", {}).get("text/plain", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "execute_result"
    ]
    assert not [t for t in texts if "PosixPath" in t or "Path(" in t]
