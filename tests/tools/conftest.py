"""Run a tool script in this process, as from the shell."""

from __future__ import annotations

import runpy
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / "tools"


@pytest.fixture
def tool(monkeypatch) -> Callable[..., None]:
    """``tool("x.py", *args)`` runs tools/x.py with those command-line arguments."""

    def run(name: str, *args: object) -> None:
        monkeypatch.setattr(sys, "argv", [name, *map(str, args)])
        runpy.run_path(str(TOOLS / name), run_name="__main__")

    return run
