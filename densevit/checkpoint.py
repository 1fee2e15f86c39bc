"""Safe checkpoint loading and conversion of public ViT / ViTDet weights to densevit names.

Nothing here can run code from a checkpoint: PyTorch files load with ``weights_only=True``, detectron2
``.pkl`` files go through a restricted unpickler that only rebuilds numpy arrays and plain containers, and
``.safetensors`` files hold no code at all.

Converted names (what the converters return):

* ``convert_timm_vit`` / ``convert_dinov2``: the keys of ``densevit.backbones.vit.ViT``
  (``patch_embed.proj.*``, ``pos_embed`` with one class slot,
  ``blocks.N.{norm1,attn.qkv,attn.proj,ls1.gamma,norm2,mlp.fc1,mlp.fc2,ls2.gamma}``).
* ``convert_detectron2_vitdet``: the keys of ``densevit.adapters.simple_pyramid.SimpleFeaturePyramid``
  (``backbone.*`` for the ViT it holds, ``simfp_2..simfp_5.*`` for the pyramid) plus detectron2's head keys
  (``proposal_generator.*``, ``roi_heads.*``) unchanged, for the task model to map.
"""

from __future__ import annotations

import codecs
import logging
import math
import pickle
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "CONVERTERS",
    "convert_detectron2_vitdet",
    "convert_dinov2",
    "convert_timm_vit",
    "load_pretrained",
    "load_state_dict_file",
]

logger = logging.getLogger(__name__)

StateDict = dict[str, Tensor]

_CONTAINER_KEYS = ("model", "state_dict", "module")


# --- reading files --------------------------------------------------------------------------------


def _numpy_core() -> tuple[Any, Any]:
    try:  # numpy >= 2 moved the pickle helpers to numpy._core; old pickles still name numpy.core.
        from numpy._core import multiarray, numeric
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray, numeric
    return multiarray, numeric


def _allowed_globals() -> dict[tuple[str, str], Any]:
    multiarray, numeric = _numpy_core()
    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): OrderedDict,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # Protocol-2 pickles store raw bytes as latin-1 strings re-encoded by this function.
        ("_codecs", "encode"): codecs.encode,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "bytearray"): bytearray,
        ("builtins", "complex"): complex,
    }
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer  # arrays in pickle protocol 5
    return allowed


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds numpy arrays, dtypes and plain containers and refuses every other global."""

    def __init__(self, file: Any) -> None:
        super().__init__(file, encoding="latin1")  # detectron2 files written by Python 2 need latin1
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._allowed:
            raise pickle.UnpicklingError(
                f"refused to load global '{module}.{name}'; a .pkl checkpoint may only contain "
                "numpy arrays, numpy dtypes and plain containers (dict, list, tuple, OrderedDict)"
            )
        return self._allowed[(module, name)]


def _read_pickle(path: Path) -> Any:
    with path.open("rb") as f:
        return _NumpyOnlyUnpickler(f).load()


def _read_torch(path: Path) -> Any:
    return torch.load(path, map_location="cpu", weights_only=True)


def _read_safetensors(path: Path) -> Any:
    try:
        from safetensors.torch import load_file
    except ImportError as err:
        raise ImportError(f"{path}: reading .safetensors files needs `pip install safetensors`") from err
    return load_file(str(path), device="cpu")


_READERS: dict[str, Callable[[Path], Any]] = {
    ".safetensors": _read_safetensors,
    **dict.fromkeys((".pth", ".pt", ".bin", ".ckpt"), _read_torch),
    ".pkl": _read_pickle,
}


def _unwrap(obj: Any, path: Path) -> Mapping[str, Any]:
    """Descend into ``model`` / ``state_dict`` / ``module`` containers until a flat name -> tensor mapping."""
    while isinstance(obj, Mapping):
        container = next((k for k in _CONTAINER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if container is None:
            return obj
        obj = obj[container]
    raise ValueError(f"{path}: expected a dict of tensors (optionally under 'model'/'state_dict'), "
                     f"found {type(obj).__name__}")


def load_state_dict_file(path: str | Path) -> StateDict:
    """Read a .safetensors, .pth/.pt/.bin/.ckpt or detectron2 .pkl file into a name -> CPU tensor dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {path} does not exist")
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(
            f"{path}: unknown checkpoint suffix {path.suffix!r}; expected one of {', '.join(_READERS)}"
        )
    try:
        raw = reader(path)
    except ImportError:
        raise
    except Exception as err:  # corrupt or refused content from any of the three readers
        raise ValueError(f"{path}: cannot read checkpoint: {err}") from err
    state = _unwrap(raw, path)
    out: StateDict = {}
    for key, value in state.items():
        if isinstance(value, np.ndarray | np.generic):
            value = torch.tensor(np.asarray(value))
        if not isinstance(value, Tensor):
            raise ValueError(f"{path}: entry {key!r} is a {type(value).__name__}, expected a tensor or array")
        out[str(key)] = value
    if not out:
        raise ValueError(f"{path}: contains no tensors")
    return out


# --- converters ----------------------------------------------------------------------------------

# Classification / pretraining-only entries: dense models have no class token, final norm or head.
_UNUSED_KEYS = ("cls_token", "dist_token", "mask_token")
_UNUSED_PREFIXES = ("norm.", "fc_norm.", "head.", "head_dist.", "decoder_")


def _one_class_slot(pos_embed: Tensor) -> Tensor:
    """pos_embed [1, P + N, C] with P prefix slots and N a square -> [1, 1 + N, C] (slot 0 = class token)."""
    total = pos_embed.shape[1]
    num_prefix = total - math.isqrt(total) ** 2
    if num_prefix == 1:
        return pos_embed
    if num_prefix == 0:  # no_embed_class models (e.g. DeiT III): add an unused zero class slot
        return torch.cat([pos_embed.new_zeros(1, 1, pos_embed.shape[2]), pos_embed], dim=1)
    return torch.cat([pos_embed[:, :1], pos_embed[:, num_prefix:]], dim=1)  # drop distillation slot


def convert_timm_vit(state_dict: Mapping[str, Tensor], patch_size: int | None = None) -> StateDict:
    """timm / DeiT / AugReg / MAE ViT weights -> densevit ``ViT`` keys.

    The class token, final norm, heads and MAE decoder are dropped (dense models do not use them);
    ``pos_embed`` keeps its grid with exactly one class slot; ``ls1.gamma`` / ``ls2.gamma`` are kept. With
    ``patch_size`` set and different from the checkpoint's, the patch kernel is resized bilinearly.
    """
    for key in ("reg_token", "register_tokens"):
        if key in state_dict:
            raise ValueError(f"checkpoint has {key!r}: ViTs with register tokens are not supported")
    out: StateDict = {}
    dropped = []
    for key, value in state_dict.items():
        if key in _UNUSED_KEYS or key.startswith(_UNUSED_PREFIXES):
            dropped.append(key)
        elif key == "pos_embed":
            out[key] = _one_class_slot(value)
        else:
            out[key] = value
    if dropped:
        logger.info("not used by dense models (expected): %s", ", ".join(dropped))
    kernel = out.get("patch_embed.proj.weight")
    if patch_size is not None and kernel is not None and tuple(kernel.shape[-2:]) != (patch_size, patch_size):
        # [C, 3, k, k] -> [C, 3, p, p]; bilinear as ViT-CoMer does for DINOv2 (patch 14 -> 16).
        out["patch_embed.proj.weight"] = F.interpolate(
            kernel.float(), size=(patch_size, patch_size), mode="bilinear", align_corners=False
        ).to(kernel.dtype)
    return out


def convert_dinov2(state_dict: Mapping[str, Tensor], patch_size: int = 16) -> StateDict:
    """DINOv2 (patch 14) weights -> densevit ``ViT`` keys with a ``patch_size`` kernel.

    ``mask_token`` is dropped, ``ls1.gamma`` / ``ls2.gamma`` kept (build the ViT with ``layer_scale_init``),
    register tokens are refused. ``pos_embed`` keeps its 37x37 grid (518 / 14), which at patch 16 means
    ``pretrain_img_size=592`` (37 * 16); it is resized bicubically to the input grid at every forward.
    """
    return convert_timm_vit(state_dict, patch_size=patch_size)


def convert_detectron2_vitdet(state_dict: Mapping[str, Tensor]) -> StateDict:
    """detectron2 ViTDet model weights -> ``SimpleFeaturePyramid`` keys (+ head keys unchanged).

    ``backbone.net.X`` -> ``backbone.X`` (the ViT inside the pyramid) and ``backbone.simfp_K.*`` ->
    ``simfp_K.*`` (same sub-indices: our pyramid mirrors detectron2's layout); ``proposal_generator.*``,
    ``roi_heads.*`` and any other key are returned unchanged.
    """
    out: StateDict = {}
    for key, value in state_dict.items():
        if key.startswith("backbone.net."):
            out["backbone." + key[len("backbone.net."):]] = value
        elif key.startswith("backbone.simfp_"):
            out[key[len("backbone."):]] = value
        else:
            out[key] = value
    return out


CONVERTERS: dict[str, Callable[[Mapping[str, Tensor]], StateDict]] = {
    "timm": convert_timm_vit,
    "mae": convert_timm_vit,
    "dinov2": convert_dinov2,
    "detectron2": convert_detectron2_vitdet,
}


# --- loading into a module -----------------------------------------------------------------------


def load_pretrained(
    module: nn.Module,
    path: str | Path,
    convert: Callable[[Mapping[str, Tensor]], StateDict] | None = None,
    expected_missing: Sequence[str] = (),
) -> tuple[list[str], list[str]]:
    """Load a checkpoint file into ``module`` (non-strict) after ``convert``; returns (missing, unexpected).

    Missing keys containing one of ``expected_missing`` (e.g. ``"rel_pos_"``, new in the dense model) are
    logged as info, other missing and unexpected keys as warnings. Shape mismatches and a checkpoint that
    shares no key with the module raise ``ValueError`` naming the file.
    """
    name = type(module).__name__
    state = load_state_dict_file(path)
    if convert is not None:
        state = convert(state)
    own = module.state_dict()
    mismatched = [f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
                  for k, v in state.items() if k in own and v.shape != own[k].shape]
    if mismatched:
        raise ValueError(f"{path}: tensor shapes differ from {name}: " + "; ".join(mismatched))
    if not any(k in own for k in state):
        raise ValueError(
            f"{path}: none of its {len(state)} keys (e.g. {next(iter(state))!r}) is a key of "
            f"{name} (e.g. {next(iter(own))!r}); wrong checkpoint format or converter?"
        )
    missing, unexpected = module.load_state_dict(state, strict=False)
    logger.info("loaded %d tensors from %s into %s", len(state) - len(unexpected), path, name)
    fresh = [k for k in missing if any(part in k for part in expected_missing)]
    if fresh:
        logger.info("new in %s, initialised fresh (expected): %s", name, ", ".join(fresh))
    if len(fresh) < len(missing):
        logger.warning("%s: keys of %s not in the checkpoint (left at init): %s",
                       path, name, ", ".join(k for k in missing if k not in fresh))
    if unexpected:
        logger.warning("%s: checkpoint keys not used by %s: %s", path, name, ", ".join(unexpected))
    return list(missing), list(unexpected)
