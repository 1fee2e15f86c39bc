"""Package namespaces whose names are imported on first use (PEP 562 module ``__getattr__``).

``from densevit.backbones import ViT`` works as before, but importing one module of a package (``densevit.datasets.
io``, say) no longer imports its siblings and their dependencies (albumentations, timm, torchvision), which is what
kept the tools' ``--help`` and ``import densevit.apis`` waiting for seconds.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, Sequence[str]]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package`` exporting ``exports`` ({submodule: names}).

    A name's submodule is imported the first time the name is read; the value is then stored on the package, so
    later reads are plain attribute lookups.
    """
    where = {name: f"{package}.{module}" for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__, sorted(where)
