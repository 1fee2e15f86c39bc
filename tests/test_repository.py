"""The checkout is self-contained: it tracks no symbolic link (one to a folder of the machine it was made on, such
as a data directory, dangles in every other clone and breaks the README's commands there)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_no_tracked_symbolic_links():
    listing = subprocess.run(["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    links = [line.split("\t", 1)[1] for line in listing.splitlines() if line.startswith("120000 ")]
    assert links == [], f"tracked symbolic links: {links}; untrack them (git rm --cached) and ignore them"
