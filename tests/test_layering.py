"""The layers of densevit (docs/architecture.md), enforced on the imports read from every module's source.

    ops / layers -> backbones -> adapters -> heads -> models (task models) -> engine / apis -> tools

``densevit.tools`` (the installed commands) is that top layer inside the package.

A layer imports only from the layers below it (and from itself). datasets, evaluation and vis sit beside models:
they may use ops / layers and each other, and engine / apis use them, but models never import them. The
utilities (config.py, checkpoint.py, benchmarking.py, lazy.py) may be imported from any layer and import no layer
themselves. Nothing in densevit imports ``tools``.

Every import counts: module level, inside functions, under ``TYPE_CHECKING``, relative or absolute.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "densevit"

# Which layer each top-level name under densevit/ belongs to. A new package or top-level module must be added here
# (the test fails until it is), which is where its place in the layers gets decided.
LAYER_OF = {
    "ops": "ops",
    "layers": "ops",  # small shared modules (LayerNorm2d, ConvNormAct): the same floor as ops
    "backbones": "backbones",
    "adapters": "adapters",
    "heads": "heads",
    "models": "models",
    "datasets": "datasets",
    "evaluation": "evaluation",
    "vis": "vis",
    "engine": "engine",
    "apis": "apis",
    "tools": "tools",  # densevit.tools: the bodies of densevit-train / -test / -infer (tools/*.py run them)
    "config": "utilities",
    "checkpoint": "utilities",
    "benchmarking": "utilities",
    "lazy": "utilities",  # the packages' lazy namespaces
    "__init__": "root",  # the package's own __init__: a docstring and the version
}

_BELOW = ("ops", "utilities")
_TASK_STACK = ("backbones", "adapters", "heads", "models")
_BESIDE_MODELS = ("datasets", "evaluation", "vis")

# layer -> the other layers it may import (every layer may import itself). Read a row as a sentence.
MAY_IMPORT: dict[str, set[str]] = {
    "utilities": set(),  # config, checkpoint, benchmarking, lazy: no densevit layer
    "ops": {"utilities"},
    "backbones": {*_BELOW},  # never adapters: what the Swin STViT-R shares with the adapter lives in ops
    "adapters": {"backbones", *_BELOW},
    "heads": {"adapters", "backbones", *_BELOW},
    "models": {"heads", "adapters", "backbones", *_BELOW},  # never datasets, evaluation, vis or engine
    "datasets": {"evaluation", "vis", *_BELOW},
    "evaluation": {"datasets", "vis", *_BELOW},
    "vis": {"datasets", "evaluation", *_BELOW},
    "engine": {*_TASK_STACK, *_BESIDE_MODELS, *_BELOW},  # not apis
    "apis": {"engine", *_TASK_STACK, *_BESIDE_MODELS, *_BELOW},
    "tools": {"apis", "engine", *_TASK_STACK, *_BESIDE_MODELS, *_BELOW},  # the top: nothing imports it
    "root": set(),
}


# (importing file relative to the repository, imported densevit layer) pairs that break the rules today and are
# being removed, each with who removes it. Keep empty: an entry here is a known debt, not a rule.
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    """One import statement's target as read from a source file."""

    file: str  # relative to the repository root
    line: int
    module: str  # absolute dotted name of what is imported, e.g. densevit.ops.resize
    source: str  # the statement as written


def module_name(path: Path, package: Path) -> str:
    """densevit/ops/resize.py -> densevit.ops.resize; a package's __init__.py -> the package."""
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def read_imports(source: str, module: str, is_package: bool, file: str) -> list[Import]:
    """Every import in ``source`` (any depth), relative ones resolved against ``module``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join([*base, node.module] if node.module else base)
            else:
                prefix = node.module or ""
            # ``from densevit import heads`` imports the densevit.heads package: name the submodule then
            targets = [f"{prefix}.{alias.name}" if prefix == "densevit" else prefix for alias in node.names]
        else:
            continue
        text = " ".join((ast.get_source_segment(source, node) or "").split())
        found += [Import(file, node.lineno, target, text) for target in targets]
    return found


def layer_of(module: str) -> str | None:
    """The layer of a densevit module (None when its top-level name is in no layer)."""
    parts = module.split(".")
    return LAYER_OF.get(parts[1] if len(parts) > 1 else "__init__")


def all_imports(package: Path) -> list[tuple[str | None, Import]]:
    """(layer of the importing module, import) for every import of every module under ``package``."""
    found = []
    for path in sorted(package.rglob("*.py")):
        module = module_name(path, package)
        file = path.relative_to(package.parent).as_posix()
        imports = read_imports(path.read_text(), module, path.name == "__init__.py", file)
        found += [(layer_of(module), imp) for imp in imports]
    return found


def layering_violations(package: Path) -> list[str]:
    """One line per import that runs up the layers: file:line, the import as written, the rule it breaks."""
    violations = []
    for importer, imp in all_imports(package):
        top = imp.module.split(".")[0]
        if top == "tools":
            violations.append(f"{imp.file}:{imp.line}: `{imp.source}`: densevit never imports tools")
            continue
        imported = layer_of(imp.module)
        if top != "densevit" or importer is None or imported in {importer, *MAY_IMPORT[importer]}:
            continue
        if (imp.file, imported) in KNOWN_VIOLATIONS:
            continue
        allowed = ", ".join(sorted({importer, *MAY_IMPORT[importer]}))
        violations.append(f"{imp.file}:{imp.line}: `{imp.source}`: {importer} may not import {imported} "
                          f"({importer} may import: {allowed})")
    return violations


def test_every_module_has_a_layer():
    unplaced = sorted(p.relative_to(PACKAGE.parent).as_posix() for p in PACKAGE.rglob("*.py")
                      if layer_of(module_name(p, PACKAGE)) is None)
    assert not unplaced, f"modules in no layer (add their top-level name to LAYER_OF): {unplaced}"


def test_imports_run_down_the_layers():
    violations = layering_violations(PACKAGE)
    assert not violations, "imports that run up the layers:\n" + "\n".join(violations)


def test_known_violations_are_still_there():
    """An entry of KNOWN_VIOLATIONS that no longer occurs is removed, so the list stays the debt that is left."""
    seen = {(imp.file, layer_of(imp.module)) for _, imp in all_imports(PACKAGE) if imp.module.startswith("densevit")}
    gone = sorted(set(KNOWN_VIOLATIONS) - seen)
    assert not gone, f"KNOWN_VIOLATIONS entries that no longer occur (delete them): {gone}"


def test_every_layer_has_a_rule():
    assert set(LAYER_OF.values()) == set(MAY_IMPORT)


@pytest.mark.parametrize(
    ("source", "module", "is_package", "expected"),
    [
        ("import densevit.ops.resize as r", "densevit.heads.uper", False, ["densevit.ops.resize"]),
        ("def f():\n    from densevit.datasets.io import read_image", "densevit.models.x", False,
         ["densevit.datasets.io"]),
        ("if TYPE_CHECKING:\n    from densevit.engine import model", "densevit.heads.x", False, ["densevit.engine"]),
        ("from ..datasets import io", "densevit.models.segmentor", False, ["densevit.datasets"]),
        ("from . import resize", "densevit.ops", True, ["densevit.ops"]),
        ("from .resize import pad_to_multiple", "densevit.ops.roi_align", False, ["densevit.ops.resize"]),
        ("from densevit import heads, vis", "densevit.models.x", False, ["densevit.heads", "densevit.vis"]),
        ("import tools.train", "densevit.apis", False, ["tools.train"]),
    ],
)
def test_reads_every_kind_of_import(source, module, is_package, expected):
    assert [imp.module for imp in read_imports(source, module, is_package, "f.py")] == expected


def test_a_violation_names_file_line_and_import(tmp_path):
    package = tmp_path / "densevit"
    (package / "models").mkdir(parents=True)
    # a function-level import, as a model might write it to dodge a module-level check
    (package / "models" / "leaky.py").write_text("def f():\n    pass\n\n\n"
                                                 "def g():\n    from densevit.datasets.io import read_image\n")
    assert layering_violations(package) == [
        "densevit/models/leaky.py:6: `from densevit.datasets.io import read_image`: models may not import datasets "
        "(models may import: adapters, backbones, heads, models, ops, utilities)"
    ]
