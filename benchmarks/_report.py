"""The common ending of the benchmark scripts: stamp the machine and the time used,
print the result as JSON and write it atomically (imported by scripts run as
``python benchmarks/NAME.py``, whose folder is then first on ``sys.path``)."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any


def finish(result: dict[str, Any], out: Path, *, cpu0_s: float, wall0_s: float) -> None:
    """Add ``machine``, ``process_cpu_s`` and ``wall_s`` (since ``cpu0_s`` from
    :func:`time.process_time` and ``wall0_s`` from :func:`time.time`) to ``result``,
    print it and write it to ``out`` (JSON, atomic)."""
    from fmlib import files

    result["machine"] = (
        f"{platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    result["process_cpu_s"] = round(time.process_time() - cpu0_s, 1)
    result["wall_s"] = round(time.time() - wall0_s, 1)
    print(json.dumps(result, indent=2))
    files.write_json(out, result)
    print(f"written: {out}")
