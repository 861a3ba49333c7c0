"""Notebook 01's explorer in a real browser: JupyterLab driven by headless Chromium.

A widget can pass every Python test and still show nothing in JupyterLab (a missing
front-end extension, a broken message, a JavaScript error). This test starts
JupyterLab on 127.0.0.1 (a token, a free port, its own settings, runtime and
workspace folders), opens a copy of ``notebooks/01_synth_exploration.ipynb``, runs
all cells, finds the explorer by its CSS class (``fmlib-explorer``, not by cell
position), moves the carrier slider and loads a patch through the explorer's load
field, and checks that the player's audio and the spectrogram image change, and that
the browser console shows no error. Screenshots go to ``data/browser/`` for a person
to look at.

The notebook copy runs with its default parameters, except the output folders,
which point into a temporary folder (as Papermill does for ``make reproduce``), so
the test writes nothing into the committed folders; it checks that it did not.

Chromium is Debian's (``apt-get install chromium``: ``/usr/bin/chromium``), driven
by pip ``playwright`` through ``executable_path``: playwright downloads no browser.
Without Chromium the test is skipped, except in CI (``FMLIB_REQUIRE_BROWSER=1``, set
by ``.ci/run``), where its absence fails. ``make test-browser`` runs it alone.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from fmlib import files
from fmlib.paths import DATA_DIR, FIGURES_DIR, NOTEBOOKS_DIR, TABLES_DIR

NOTEBOOK = "01_synth_exploration.ipynb"
SCREENSHOTS_DIR = DATA_DIR / "browser"
#: Chromium's switches for this closed network: without the background-networking
#: ones it keeps trying to reach Google's hosts and fails (env notes, python.md).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Output-folder parameters pointed into the temporary folder, when the notebook
#: declares them (every other parameter keeps its default).
OUTPUT_PARAMETERS = ("OUTPUT_DIR", "WORK_DIR")
#: Seconds allowed for "run all" of notebook 01 up to the explorer.
RUN_ALL_TIMEOUT_S = 300


def _required() -> bool:
    return os.environ.get("FMLIB_REQUIRE_BROWSER") == "1"


def _skip_or_fail(reason: str):
    if _required():
        pytest.fail(f"{reason} (FMLIB_REQUIRE_BROWSER=1: the browser test must run)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
    )
    if path is None:
        _skip_or_fail(
            "chromium not found: install Debian's with `apt-get install -y chromium` "
            "(`make test-browser` does it when run as root)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _skip_or_fail("pip playwright not installed: `make venv` installs it")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notebook_copy(folder: Path, out: Path) -> Path:
    """Notebook 01 with a cell after ``parameters`` pointing its output folders into
    ``out`` (Papermill's injected-parameters cell, written by hand)."""
    import nbformat

    nb = nbformat.read(NOTEBOOKS_DIR / NOTEBOOK, as_version=4)
    index = next(
        i
        for i, c in enumerate(nb.cells)
        if "parameters" in c.get("metadata", {}).get("tags", [])
    )
    declared = nb.cells[index].source
    lines = [
        f"{name} = {json.dumps(str(out / name.lower()))}"
        for name in OUTPUT_PARAMETERS
        if f"{name} =" in declared
    ]
    cell = nbformat.v4.new_code_cell("\n".join(lines))
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index + 1, cell)
    path = folder / NOTEBOOK
    files.write_text(path, nbformat.writes(nb))
    return path


def _lab_settings(root: Path) -> dict[str, str]:
    """Environment of a JupyterLab whose config, data, runtime, settings and
    workspaces are all under ``root``, with the news pop-up disabled."""
    config, data, runtime = root / "config", root / "data", root / "runtime"
    files.write_json(
        config / "labconfig" / "page_config.json",
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}},
    )
    files.write_json(
        root
        / "settings"
        / "@jupyterlab"
        / "apputils-extension"
        / "notification.jupyterlab-settings",
        {"fetchNews": "false", "checkForUpdates": False},
    )
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_DATA_DIR=str(data),
        JUPYTER_RUNTIME_DIR=str(runtime),
        JUPYTER_PLATFORM_DIRS="1",
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 with a token: yields (url, token, folder)."""
    root = tmp_path_factory.mktemp("lab")
    work = root / "notebooks"
    _notebook_copy(work, root / "outputs")
    port, token = _free_port(), secrets.token_hex(16)
    log = open(root / "jupyterlab.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={work}",
            f"--LabApp.user_settings_dir={root / 'settings'}",
            f"--LabApp.workspaces_dir={root / 'workspaces'}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.check_for_updates_class="
            "jupyterlab.handlers.announcements.NeverCheckForUpdate",
            "--LabApp.news_url=None",
            # no extension listing from pypi.org: this network is closed
            "--LabApp.extension_manager=readonly",
        ]
        + (["--allow-root"] if os.geteuid() == 0 else []),
        cwd=work,
        env=_lab_settings(root),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}") as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(
                    "JupyterLab did not start:\n"
                    + (root / "jupyterlab.log").read_text(errors="replace")[-3000:]
                )
            time.sleep(0.5)
        yield url, token, root
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def _snapshot() -> dict[Path, int]:
    return {
        p: p.stat().st_mtime_ns
        for d in (FIGURES_DIR, TABLES_DIR)
        if d.is_dir()
        for p in d.iterdir()
    }


def _save_screenshot(page_or_element, name: str) -> Path:
    return files.write_bytes(
        SCREENSHOTS_DIR / f"{name}.png", page_or_element.screenshot()
    )


def _wait_changed(page, selector: str, attribute: str, old: str, timeout_s: float):
    """Wait until ``selector``'s ``attribute`` differs from ``old``; return it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = page.locator(selector).first.get_attribute(attribute)
        if value and value != old:
            return value
        page.wait_for_timeout(50)
    pytest.fail(f"{selector} {attribute} did not change within {timeout_s} s")


def test_missing_browser_skips_except_where_required(monkeypatch):
    monkeypatch.delenv("FMLIB_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium not found"):
        _skip_or_fail("chromium not found")
    monkeypatch.setenv("FMLIB_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="must run"):
        _skip_or_fail("chromium not found")


@pytest.mark.browser
@pytest.mark.slow
def test_explorer_in_jupyterlab(chromium, lab, tmp_path):
    from playwright.sync_api import sync_playwright

    from fmlib.audio.audio_io import write_wav
    from fmlib.synth.patch import save_patch

    url, token, root = lab
    explorer = ".fmlib-explorer"
    image = f"{explorer} img.fmlib-explorer-image"
    audio = f"{explorer} audio.fmlib-explorer-player"
    before = _snapshot()
    console_errors: list[str] = []
    timings: dict[str, float] = {}
    patch_path = save_patch(
        {
            "algorithm": "dx7_18",
            "carrier_hz": 880.0,
            "modulators": [{"ratio": 2.0, "index": 3.0}]
            + [{"ratio": 1.0, "index": 0.0}] * 4,
            "envelope": {
                "attack_s": 0.2,
                "decay_s": 0.3,
                "sustain": 0.4,
                "release_s": 0.5,
            },
        },
        tmp_path / "loaded_patch.json",
    )
    reference = tmp_path / "reference.wav"
    t = np.arange(2 * 16000) / 16000
    write_wav(reference, 0.5 * np.sin(2 * np.pi * 440.0 * t), 16000)
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1900},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.on(
                "console",
                lambda m: (
                    console_errors.append(f"console: {m.text}")
                    if m.type == "error"
                    else None
                ),
            )
            page.on("pageerror", lambda e: console_errors.append(f"page error: {e}"))
            t0 = time.monotonic()
            page.goto(f"{url}/lab/tree/{NOTEBOOK}?token={token}")
            page.wait_for_selector(".jp-Notebook", timeout=120_000)
            # the kernel must be ready before "run all"
            page.wait_for_function(
                """() => {
                    const app = window.jupyterapp;
                    const w = app && app.shell.currentWidget;
                    const k = w && w.sessionContext && w.sessionContext.session
                        && w.sessionContext.session.kernel;
                    return k && k.status === 'idle';
                }""",
                timeout=120_000,
            )
            timings["open"] = time.monotonic() - t0
            t0 = time.monotonic()
            page.evaluate(
                "() => window.jupyterapp.commands.execute('notebook:run-all-cells')"
            )
            page.wait_for_selector(image, timeout=RUN_ALL_TIMEOUT_S * 1000)
            page.wait_for_function(
                f"""() => {{
                    const i = document.querySelector({json.dumps(image)});
                    const a = document.querySelector({json.dumps(audio)});
                    return i && i.src && i.complete && i.naturalWidth > 0
                        && a && a.src;
                }}""",
                timeout=60_000,
            )
            timings["run all"] = time.monotonic() - t0
            box = page.locator(explorer).first
            box.scroll_into_view_if_needed()
            n_sliders = box.locator(".widget-slider").count()
            assert n_sliders >= 15, n_sliders
            _save_screenshot(page, "01_after_run_all")
            _save_screenshot(box, "02_explorer")
            img0 = page.locator(image).first.get_attribute("src")
            wav0 = page.locator(audio).first.get_attribute("src")

            # move the carrier slider: type into its readout, as a person can
            t0 = time.monotonic()
            readout = box.locator(".fmlib-slider-carrier_hz .widget-readout").first
            readout.click()
            page.keyboard.press("Control+A")
            page.keyboard.type("440")
            page.keyboard.press("Enter")
            img1 = _wait_changed(page, image, "src", img0, 30)
            wav1 = _wait_changed(page, audio, "src", wav0, 30)
            timings["slider move"] = time.monotonic() - t0
            midi = box.locator(".fmlib-midi input").first.input_value()
            assert float(midi) == pytest.approx(69.0, abs=0.01)
            _save_screenshot(box, "03_after_slider_move")

            # load a patch through the explorer's load field
            box.locator(".fmlib-load-path input").first.fill(str(patch_path))
            box.locator("button.fmlib-load-button").first.click()
            _wait_changed(page, image, "src", img1, 30)
            _wait_changed(page, audio, "src", wav1, 30)
            page.wait_for_function(
                """() => [...document.querySelectorAll('.fmlib-status')]
                    .some(e => e.textContent.includes('loaded'))""",
                timeout=30_000,
            )
            midi = box.locator(".fmlib-midi input").first.input_value()
            assert float(midi) == pytest.approx(81.0, abs=0.01)  # 880 Hz = A5
            _save_screenshot(box, "04_after_load_patch")

            # A/B: a reference sound through the reference field; distances appear
            box.locator(".fmlib-reference-path input").first.fill(str(reference))
            box.locator("button.fmlib-reference-button").first.click()
            page.wait_for_selector(
                f"{explorer} audio.fmlib-reference-player", timeout=30_000
            )
            page.wait_for_selector(f"{explorer} table.fmlib-distances", timeout=30_000)
            text = box.locator("table.fmlib-distances").first.inner_text()
            assert "log-mel" in text and "A vs B" in text, text
            _save_screenshot(box, "05_after_load_reference")
        finally:
            context.close()
    print(
        "browser timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
    )
    assert not console_errors, "\n".join(console_errors)
    assert _snapshot() == before, "the notebook changed committed figures or tables"
    outputs = root / "outputs"
    assert (outputs / "output_dir" / "figures").is_dir() or not any(outputs.iterdir())
