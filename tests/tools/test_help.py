"""Every tool explains itself at once: ``--help`` prints its purpose and usage and exits cleanly, before torch or
any other heavy library is imported (torch alone takes a second or more to import); ``import densevit`` packages
import a module's siblings only when they are used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = sorted(p.name for p in (ROOT / "tools").glob("*.py"))
HEAVY = ("torch", "torchvision", "timm", "albumentations", "mmengine.model", "pycocotools")
# --help lists the checkpoint formats, whose converters live with the torch code in densevit.checkpoint
NEEDS_TORCH = {"convert_checkpoint.py": "torch"}


def _modules_after(code: str, *argv: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``code`` in a fresh interpreter; its output and which of HEAVY it left imported."""
    probe = f"{code}\nimport sys\nprint('HEAVY:', ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe, *argv], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("HEAVY:"))
    return result, {m for m in line[len("HEAVY:"):].strip().split(",") if m}


def test_every_tool_is_checked():
    assert len(TOOLS) >= 16 and {"train.py", "test.py", "infer.py", "export.py", "benchmark.py"} <= set(TOOLS)


@pytest.mark.parametrize("name", TOOLS)
def test_help_answers_before_the_heavy_imports(name):
    run_help = ("import runpy, sys\nsys.argv = [sys.argv[1], '--help']\ntry:\n"
                "    runpy.run_path(sys.argv[0], run_name='__main__')\nexcept SystemExit as exit:\n"
                "    assert exit.code in (0, None), exit.code")
    result, heavy = _modules_after(run_help, f"tools/{name}")
    assert result.stdout.startswith("usage:") and f"tools/{name}" in result.stdout, result.stdout[:300]
    allowed = {NEEDS_TORCH[name]} if name in NEEDS_TORCH else set()
    assert heavy <= allowed, f"tools/{name} --help imported {sorted(heavy - allowed)}"


def test_importing_one_module_leaves_its_package_siblings_alone():
    """A package namespace (``densevit.datasets``) imports a submodule on first use of one of its names."""
    code = ("import densevit.datasets.io, densevit.evaluation.table, densevit.vis.curves, densevit.engine\n"
            "import densevit.datasets as d\nassert 'densevit.datasets.coco' not in sys.modules\n"
            "assert 'ADE20K' in dir(d) and 'ADE20K' in d.__all__")
    _, heavy = _modules_after("import sys\n" + code)
    assert heavy == set()
    code = "from densevit.backbones import ViT\nfrom densevit.datasets import COCO_KEYPOINTS\nprint(ViT.__module__)"
    result, heavy = _modules_after(code)
    assert "densevit.backbones.vit" in result.stdout and "torch" in heavy and "albumentations" not in heavy
    _, heavy = _modules_after("import densevit.apis")  # the task models, not every backbone: timm comes with a config
    assert "timm" not in heavy and "torchvision" in heavy


def test_an_unknown_package_name_is_an_attribute_error():
    import densevit.models

    with pytest.raises(AttributeError, match=r"'densevit\.models' has no attribute 'Missing'"):
        densevit.models.Missing  # noqa: B018
