"""Benchmark: wall time, notes/s and peak memory of ``python -m fmlib generate``.

Runs the real command in a subprocess (all cores by default) and samples the memory
of its whole process tree (parent + workers) every 0.2 s with psutil: the peak of
the summed RSS, and of the summed PSS (shared pages split between processes, so it
does not count numpy's libraries once per process). Prints one line per size with the
CPU time of the run (user + sys of all its processes: on a shared machine, CPU time /
cores estimates the wall time on an idle one) and the machine's load average. The
dataset is deleted afterwards unless ``--keep``.

    .venv/bin/python benchmarks/bench_dataset.py                 # 5,000 notes
    .venv/bin/python benchmarks/bench_dataset.py --n 5000 50000  # both sizes
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import threading
import time

import psutil

from fmlib.paths import DATASETS_DIR


def _tree_memory(proc: psutil.Process) -> tuple[int, int]:
    """(sum of RSS, sum of PSS) in bytes over ``proc`` and its descendants."""
    rss = pss = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    for p in procs:
        try:
            info = p.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return rss, pss


def bench(n: int, *, workers: int, shard_size: int | None, keep: bool) -> dict:
    out = DATASETS_DIR / f"bench-{n}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [
        sys.executable,
        "-m",
        "fmlib",
        "generate",
        "--n",
        str(n),
        "--seed",
        "0",
        "--out",
        str(out),
        "--workers",
        str(workers),
        "--quiet",
    ]
    if shard_size:
        cmd += ["--shard-size", str(shard_size)]
    load_before = os.getloadavg()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = {"rss": 0, "pss": 0}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    ps = psutil.Process(proc.pid)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss, pss = _tree_memory(ps)
            peak["rss"] = max(peak["rss"], rss)
            peak["pss"] = max(peak["pss"], pss)
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    code = proc.wait()
    wall = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (cpu_after.ru_utime - cpu_before.ru_utime) + (
        cpu_after.ru_stime - cpu_before.ru_stime
    )
    done.set()
    thread.join()
    if code != 0:
        raise SystemExit(f"generate failed with exit status {code}")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    if not keep:
        shutil.rmtree(out)
    return {
        "n": n,
        "workers": workers,
        "wall_s": wall,
        "notes_per_s": n / wall,
        "cpu_s": cpu_s,
        "peak_rss_mb": peak["rss"] / 1e6,
        "peak_pss_mb": peak["pss"] / 1e6,
        "disk_gb": size / 1e9,
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[5000])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--shard-size", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the datasets")
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}, workers: {args.workers}")
    for n in args.n:
        r = bench(n, workers=args.workers, shard_size=args.shard_size, keep=args.keep)
        print(
            f"n={r['n']:>7}  wall {r['wall_s']:7.1f} s  "
            f"{r['notes_per_s']:6.0f} notes/s  CPU {r['cpu_s']:7.1f} s "
            f"({r['n'] / r['cpu_s']:4.0f} notes per CPU-s)  "
            f"peak RSS {r['peak_rss_mb']:5.0f} MB (PSS {r['peak_pss_mb']:5.0f} MB)  "
            f"disk {r['disk_gb']:.2f} GB  load {r['load_before'][0]:.1f} -> "
            f"{r['load_after'][0]:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
