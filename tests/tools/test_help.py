"""Every tool explains itself: ``--help`` prints its purpose and usage and exits cleanly."""

from __future__ import annotations

import pytest

NEW_TOOLS = ["analyze_logs.py", "browse_dataset.py", "export.py", "print_config.py", "publish_model.py"]


@pytest.mark.parametrize("name", NEW_TOOLS)
def test_help(tool, capsys, name):
    with pytest.raises(SystemExit) as exit_info:
        tool(name, "--help")
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage:") and f"python tools/{name}" in text
