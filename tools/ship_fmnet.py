"""Copy a trained fmnet model folder into the package as the shipped model.

``model.keras`` is copied byte for byte; ``model.json`` is copied with the
machine-specific paths of the datasets and teacher notes reduced to their folder
names (the files' sha256 are printed for the model card).

Usage::

    .venv/bin/python tools/ship_fmnet.py data/models/fmnet-XXX
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fmlib import files
from fmlib.estimate.predict import check_model_folder
from fmlib.paths import SHIPPED_MODEL_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    args = parser.parse_args()
    meta, model_path = check_model_folder(args.model_dir)
    if meta.get("kind") != "fmnet":
        raise SystemExit(f"{args.model_dir}: not an fmnet model folder")
    for key in ("train_dataset", "test_dataset", "teacher_notes"):
        if meta.get(key):
            meta[key] = Path(meta[key]).name
    meta["shipped_from"] = args.model_dir.name
    files.write_bytes(SHIPPED_MODEL_DIR / "model.keras", model_path.read_bytes())
    files.write_json(SHIPPED_MODEL_DIR / "model.json", meta)
    for name in ("model.keras", "model.json"):
        p = SHIPPED_MODEL_DIR / name
        print(f"{p}: {p.stat().st_size:,} bytes, sha256 {files.file_sha256(p)}")


if __name__ == "__main__":
    main()
