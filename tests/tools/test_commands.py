"""The tools are installed as commands: pyproject's [project.scripts] name densevit-train / -test / -infer, each a
``main`` in densevit.tools that the tools/ script of the same name runs."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("scripts", {})


@pytest.mark.parametrize("tool", ["train", "test", "infer"])
def test_each_tool_is_a_command_whose_main_explains_itself(tool, capsys):
    module_name, _, attr = SCRIPTS.get(f"densevit-{tool}", "").partition(":")
    assert module_name == f"densevit.tools.{tool}", f"[project.scripts] has no densevit-{tool}: {SCRIPTS}"
    main = getattr(importlib.import_module(module_name), attr)
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("usage:")
    assert f"from {module_name} import main" in (ROOT / "tools" / f"{tool}.py").read_text()  # one copy of the code
