"""The patch: one sound's parameters, its JSON format and its validation.

A patch JSON document has exactly this shape; any other key is refused, naming the
closest valid key (a typo such as ``atack_s`` never passes silently)::

    {"algorithm": "dx7_18", "carrier_hz": 440.0,
     "modulators": [{"ratio": 2.0, "index": 1.5}, ... five entries, M1 first ...],
     "envelope": {"attack_s": 0.01, "decay_s": 0.2, "sustain": 0.6, "release_s": 0.3},
     "level": 1.0}

``level`` (the carrier's linear output gain, :data:`fmlib.synth.params.LEVEL`) is
optional: a patch without it plays at 1.0, the paper's amplitude, bit-identically to
before ``level`` existed.

``"curve"`` inside ``"envelope"`` is optional too: ``"linear"`` (the default, the
paper's ADSR) or ``"exponential"`` (decay and release straight lines in dB, as a
DX7 plays; see :data:`fmlib.synth.params.ENVELOPE_CURVES`). A patch without it is
linear and renders bit-identically to before curves existed; :meth:`Patch.to_dict`
writes the key only for a non-linear curve, so linear patches keep their JSON.

Validation reads the limits of :mod:`fmlib.synth.params`; every error names the field
and what is valid.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmlib.errors import InputError
from fmlib.synth import params as P
from fmlib.synth.algorithms import DEFAULT_ALGORITHM, get_algorithm


@dataclass(frozen=True)
class Modulator:
    """One modulator: frequency ``ratio`` x carrier, modulation ``index`` in radians."""

    ratio: float
    index: float


@dataclass(frozen=True)
class Envelope:
    """ADSR: times in seconds, ``sustain`` a level in [0, 1], ``curve`` one of
    :data:`fmlib.synth.params.ENVELOPE_CURVES` (the shape of decay and release)."""

    attack_s: float
    decay_s: float
    sustain: float
    release_s: float
    curve: str = P.DEFAULT_ENVELOPE_CURVE


@dataclass(frozen=True)
class Patch:
    """A complete, validated synthesizer patch (build it with
    :func:`patch_from_dict`)."""

    algorithm: str
    carrier_hz: float
    modulators: tuple[Modulator, ...]
    envelope: Envelope
    level: float = P.DEFAULT_LEVEL

    def to_dict(self) -> dict[str, Any]:
        """The patch in its JSON shape (plain floats; ``envelope.curve`` only when
        it is not the default, linear)."""
        d = {
            "algorithm": self.algorithm,
            "carrier_hz": float(self.carrier_hz),
            "modulators": [
                {"ratio": float(m.ratio), "index": float(m.index)}
                for m in self.modulators
            ],
            "envelope": {
                "attack_s": float(self.envelope.attack_s),
                "decay_s": float(self.envelope.decay_s),
                "sustain": float(self.envelope.sustain),
                "release_s": float(self.envelope.release_s),
            },
            "level": float(self.level),
        }
        if self.envelope.curve != P.DEFAULT_ENVELOPE_CURVE:
            d["envelope"]["curve"] = self.envelope.curve
        return d

    def to_vector(self) -> np.ndarray:
        """The 15 parameters in :data:`fmlib.synth.params.TARGET_NAMES` order,
        float64."""
        e = self.envelope
        return np.array(
            [self.carrier_hz]
            + [m.ratio for m in self.modulators]
            + [m.index for m in self.modulators]
            + [e.attack_s, e.decay_s, e.sustain, e.release_s],
            dtype=np.float64,
        )


def _number(value: Any, field: str, spec: P.ParamSpec) -> float:
    if isinstance(value, bool) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise InputError(
            f"{field}: expected a number, got {type(value).__name__} {value!r}; "
            f"valid: {spec.valid_text()}"
        )
    try:
        x = float(value)
    except OverflowError:  # an integer beyond float range, e.g. 1 followed by 400 zeros
        x = math.inf
    if not spec.is_valid(x):
        raise InputError(f"{field}: {x!r} is not valid; valid: {spec.valid_text()}")
    return x


def _mapping(value: Any, field: str) -> dict:
    if not isinstance(value, dict):
        raise InputError(f"{field}: expected an object, got {type(value).__name__}")
    return value


#: The valid keys of each object of a patch document.
TOP_KEYS = ("algorithm", "carrier_hz", "modulators", "envelope", "level")
MODULATOR_KEYS = ("ratio", "index")
ENVELOPE_KEYS = tuple(spec.name for spec in P.ENVELOPE_PARAMS) + ("curve",)


def _check_keys(d: dict, valid: tuple[str, ...], where: str) -> None:
    """Refuse a key that is not in ``valid``, naming the closest valid one."""
    import difflib

    for key in d:
        if key in valid:
            continue
        shown = key if isinstance(key, str) else repr(key)
        close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise InputError(
            f"{where}{shown}: unknown key; {hint}valid keys: {', '.join(valid)}"
        )


def _key(d: dict, key: str, where: str) -> Any:
    if key not in d:
        raise InputError(f"{where}{key}: missing key")
    return d[key]


def patch_from_dict(d: Any) -> Patch:
    """Validate a plain dict in the JSON shape and return a :class:`Patch`.

    Raises:
        InputError: naming the first invalid field and what is valid.
    """
    if isinstance(d, Patch):
        return d
    d = _mapping(d, "patch")
    _check_keys(d, TOP_KEYS, "")
    algorithm = d.get("algorithm", DEFAULT_ALGORITHM)
    if not isinstance(algorithm, str):
        raise InputError(
            f"algorithm: expected a string, got {type(algorithm).__name__}"
        )
    get_algorithm(algorithm)
    carrier_hz = _number(_key(d, "carrier_hz", ""), "carrier_hz", P.CARRIER)
    mods = _key(d, "modulators", "")
    if not isinstance(mods, list):
        raise InputError(f"modulators: expected a list of {P.N_MODULATORS} objects")
    if len(mods) != P.N_MODULATORS:
        raise InputError(
            f"modulators: expected exactly {P.N_MODULATORS} entries (M1..M5), "
            f"got {len(mods)}"
        )
    modulators = []
    for i, m in enumerate(mods, start=1):
        where = f"modulators[{i - 1}] (M{i})"
        m = _mapping(m, where)
        _check_keys(m, MODULATOR_KEYS, where + ".")
        modulators.append(
            Modulator(
                ratio=_number(_key(m, "ratio", where + "."), where + ".ratio", P.RATIO),
                index=_number(_key(m, "index", where + "."), where + ".index", P.INDEX),
            )
        )
    env = _mapping(_key(d, "envelope", ""), "envelope")
    _check_keys(env, ENVELOPE_KEYS, "envelope.")
    values = {
        spec.name: _number(
            _key(env, spec.name, "envelope."), f"envelope.{spec.name}", spec
        )
        for spec in P.ENVELOPE_PARAMS
    }
    curve = env.get("curve", P.DEFAULT_ENVELOPE_CURVE)
    if not isinstance(curve, str) or curve not in P.ENVELOPE_CURVES:
        raise InputError(
            f"envelope.curve: {curve!r} is not valid; valid: "
            + ", ".join(repr(c) for c in P.ENVELOPE_CURVES)
        )
    values["curve"] = curve
    level = P.DEFAULT_LEVEL
    if "level" in d:
        level = _number(d["level"], "level", P.LEVEL)
    return Patch(algorithm, carrier_hz, tuple(modulators), Envelope(**values), level)


def patch_from_vector(
    vector: Any,
    *,
    algorithm: str = DEFAULT_ALGORITHM,
    level: float = P.DEFAULT_LEVEL,
    curve: str = P.DEFAULT_ENVELOPE_CURVE,
) -> Patch:
    """Build a patch from 15 values in :data:`fmlib.synth.params.TARGET_NAMES` order
    (and an optional ``level`` and envelope ``curve``, which are not among the
    15)."""
    v = np.asarray(vector, dtype=np.float64).reshape(-1)
    if v.shape != (len(P.TARGET_NAMES),):
        raise InputError(
            f"parameter vector: expected {len(P.TARGET_NAMES)} values, got {v.size}"
        )
    n = P.N_MODULATORS
    return patch_from_dict(
        {
            "algorithm": algorithm,
            "carrier_hz": v[0],
            "modulators": [
                {"ratio": v[1 + i], "index": v[1 + n + i]} for i in range(n)
            ],
            "envelope": {
                **dict(
                    zip(
                        [s.name for s in P.ENVELOPE_PARAMS],
                        v[1 + 2 * n :],
                        strict=True,
                    )
                ),
                "curve": curve,
            },
            "level": level,
        }
    )


def load_patch(path: str | os.PathLike) -> Patch:
    """Read and validate a patch JSON file.

    Raises:
        MissingFileError: the file does not exist.
        InputError: unreadable, empty, not JSON, or an invalid patch.
    """
    from fmlib import files

    path = files.check_input(path, what="patch JSON file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the patch file ({exc})") from None
    if not text.strip():
        raise InputError(f"{path}: the patch file is empty; expected a JSON object")
    try:
        # NaN and Infinity literals (not JSON, but Python writes them) parse to
        # floats here, so that validation rejects them naming their field.
        d = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        where = f" at line {exc.lineno}: {exc.msg}" if hasattr(exc, "lineno") else ""
        raise InputError(f"{path}: invalid JSON{where}") from None
    try:
        return patch_from_dict(d)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def save_patch(patch: Patch | dict, path: str | os.PathLike) -> Path:
    """Validate ``patch`` and write it as indented JSON, atomically, through
    :mod:`fmlib.files` (missing parent folders are created).

    Returns:
        The path written.

    Raises:
        InputError: an invalid patch, or a path that cannot be written (one line).
    """
    from fmlib import files

    p = patch_from_dict(patch)
    path = files.check_output(path)
    return files.write_json(path, p.to_dict())
