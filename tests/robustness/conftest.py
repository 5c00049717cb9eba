"""One scratch folder per session for the files the properties write (pytest cleans it up)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

_ids = itertools.count()


class Scratch:
    """Fresh paths in one folder: ``new("x.toml")`` is a path in a folder of its own."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def new(self, name: str) -> Path:
        folder = self.root / str(next(_ids))
        folder.mkdir()
        return folder / name


@pytest.fixture(scope="session")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scratch]:
    yield Scratch(tmp_path_factory.mktemp("robustness"))
