"""Benchmark: how fast and how light a bad command line is refused.

Runs real ``python -m fmlib`` processes on bad input and prints, per case, the wall
time until the one-line error, the process's peak RSS (MB) and the exit status;
then the peak RSS of ``generate`` for two sizes (memory must not grow with ``--n``).

    .venv/bin/python benchmarks/bench_refusals.py
    .venv/bin/python benchmarks/bench_refusals.py --sizes 512 4096
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: This checkout (not whichever fmlib is installed): the children import it.
PROJECT_ROOT = Path(__file__).resolve().parents[1]

_CHILD = (
    "import resource, sys, time\n"
    "t0 = time.perf_counter()\n"
    "from fmlib.cli import main\n"
    "status = main(sys.argv[1:])\n"
    "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
    "kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
    "peak = round(max(rss, kids), 1)\n"
    "wall = round(time.perf_counter() - t0, 3)\n"
    "print('BENCH', status, wall, peak, file=sys.stderr)\n"
)


def run(argv: list[str], cwd: Path) -> tuple[int, float, float, str]:
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
    )
    wall = time.perf_counter() - t0
    lines = done.stderr.strip().splitlines()
    bench = [line for line in lines if line.startswith("BENCH")][-1].split()
    errors = [line for line in lines if line.startswith("error:")]
    return int(bench[1]), wall, float(bench[3]), errors[0] if errors else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[512, 2048])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fmlib-bench-"))
    try:
        (work / "m").mkdir()
        (work / "m" / "model.json").write_text(json.dumps({"complete": True}))
        (work / "m" / "model.keras").write_bytes(b"junk")
        (work / "in.wav").write_bytes(b"RIFF")
        example = PROJECT_ROOT / "examples" / "patch.json"
        cases = {
            "generate --n 99999999999": ["generate", "--n", "99999999999",
                                         "--out", "d"],
            "generate --n 100000000 (disk)": ["generate", "--n", "100000000",
                                              "--out", "d"],
            "render -o the input": ["render", str(example), "-o", str(example)],
            "predict junk model": ["predict", "m", "in.wav", "-o", "x.json"],
            "evaluate --model a dataset": ["evaluate", "--model", "in.wav", "--data",
                                           "x", "--out", "e"],
        }  # fmt: skip
        print(f"{'case':34s} {'status':>6s} {'wall s':>7s} {'peak MB':>8s}")
        for name, argv in cases.items():
            status, wall, peak, err = run(argv, work)
            print(f"{name:34s} {status:6d} {wall:7.2f} {peak:8.1f}   {err[:60]}")
        for n in args.sizes:
            out = work / f"ds{n}"
            argv = ["generate", "--n", str(n), "--workers", "1", "--out", str(out)]
            status, wall, peak, _ = run([*argv, "--quiet"], work)
            print(f"{'generate --n ' + str(n) + ' --workers 1':34s} {status:6d} "
                  f"{wall:7.2f} {peak:8.1f}")  # fmt: skip
            shutil.rmtree(out, ignore_errors=True)
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
