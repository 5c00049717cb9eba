"""Every data file a package reads ships in a regular (non-editable) install: pyproject's
package-data patterns cover each file under the packages' data folders."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_package_data_covers_every_data_file() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]
    for package, globs in patterns.items():
        data = ROOT / package / "data"
        if not data.is_dir():
            continue
        for f in data.rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts:
                rel = f.relative_to(ROOT / package).as_posix()
                assert any(
                    fnmatch.fnmatch(rel, g) and rel.count("/") == g.count("/") for g in globs
                ), f"{package}/{rel} is not in package-data"
