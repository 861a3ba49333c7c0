"""fmlib: a 6-operator FM synthesizer and a CNN that learns to program it.

The public API used by notebooks, tests and benchmarks::

    import fmlib
    audio = fmlib.render(patch)                 # (64000,) float32 at 16 kHz
    batch = fmlib.render_batch([p1, p2])        # (2, 64000)
    patch = fmlib.load_patch("patch.json"); fmlib.save_patch(patch, "copy.json")
"""

from fmlib.errors import InputError, MissingFileError
from fmlib.synth.algorithms import ALGORITHMS, DEFAULT_ALGORITHM, get_algorithm
from fmlib.synth.engine import render, render_batch
from fmlib.synth.params import PARAMS, SAMPLE_RATE, TARGET_NAMES
from fmlib.synth.patch import (
    Envelope,
    Modulator,
    Patch,
    load_patch,
    patch_from_dict,
    save_patch,
)

__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "PARAMS",
    "SAMPLE_RATE",
    "TARGET_NAMES",
    "Envelope",
    "InputError",
    "MissingFileError",
    "Modulator",
    "Patch",
    "get_algorithm",
    "load_patch",
    "patch_from_dict",
    "render",
    "render_batch",
    "save_patch",
]
