"""Safe checkpoint reading, the converters of public weight layouts, and the one way to load weights into a module.

``load_weights(module, path, converter)`` loads a file into an already-built module after converting its keys
with a converter from ``CONVERTERS`` (or the module's ``default_converter``), and reports the keys it loaded,
those the file's layout does not have (new in the dense model, left at init), and the missing / unexpected /
mis-shaped ones. A config's ``pretrained`` calls it after building its component (``densevit.config.build``).

Nothing here can run code from a checkpoint: PyTorch files load with ``weights_only=True``, detectron2
``.pkl`` files go through a restricted unpickler that only rebuilds numpy arrays and plain containers, and
``.safetensors`` files hold no code at all.

Layouts (``CONVERTERS`` names -> the module they fill):

* ``timm`` / ``mae`` / ``dinov2``: timm-style ViT weights (DeiT, AugReg, MAE, DINOv2) -> ``ViT``
  (``patch_embed.proj.*``, ``pos_embed`` with one class slot,
  ``blocks.N.{norm1,attn.qkv,attn.proj,ls1.gamma,norm2,mlp.fc1,mlp.fc2,ls2.gamma}``);
  ``hybrid_vit``: the same files -> ``HybridViT`` (blocks and positions; the convolutional stem starts fresh).
* ``detectron2``: detectron2 ViTDet model files -> ``SimpleFeaturePyramid`` (``backbone.*`` for its ViT,
  ``simfp_2..simfp_5.*``), detectron2's head keys (``proposal_generator.*``, ``roi_heads.*``) unchanged.
* ``vit_comer``: official ViT-CoMer backbones / detectors / segmentors, or ViT-only weights -> ``ViTCoMer``.
* ``swin``: mmdet Swin and released STViT-R-Swin detectors, or ImageNet Swin weights -> ``SwinTransformer``,
  ``SwinSTViTR``.
* ``timm_features``: a timm classification model's weights -> ``TimmBackbone`` (timm's feature wrapper).
* ``vitpose`` / ``mmpose_vitpose``: official ViTPose (``backbone.*``, ``keypoint_head.*``) and mmpose 1.x
  (``backbone.layers.*``, ``head.*``) pose models -> ``TopDownPose``; ``vitpose_mae``: MAE -> ``ViTPoseBackbone``.
* ``densevit``: densevit's own names (a file written by ``tools/convert_checkpoint.py`` or a training run).
"""

from __future__ import annotations

import codecs
import json
import logging
import math
import pickle
import re
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "CONVERTERS",
    "Converter",
    "LoadReport",
    "convert_detectron2_heads",
    "convert_detectron2_vitdet",
    "convert_dinov2",
    "convert_mae_vitpose",
    "convert_mmpose_vitpose",
    "convert_swin_checkpoint",
    "convert_timm_features",
    "convert_timm_vit",
    "convert_vit_comer",
    "convert_vitpose",
    "ema_note",
    "get_converter",
    "load_state",
    "load_state_dict_file",
    "load_weights",
    "read_checkpoint",
    "read_torch_checkpoint",
    "resolve_weights",
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


def read_torch_checkpoint(path: str | Path, map_location: Any = "cpu") -> Any:
    """A PyTorch checkpoint with ``weights_only=True`` said explicitly (environment defaults cannot turn it off)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {path} does not exist")
    return torch.load(path, map_location=map_location, weights_only=True)


def read_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict:
    """A training or published checkpoint as a dict with ``state_dict`` (and ``meta``): PyTorch files weights-only,
    ``.safetensors`` files (as ``tools/publish_model.py`` writes them, the dataset meta in the header) too."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        checkpoint = read_torch_checkpoint(path, map_location)
        if not isinstance(checkpoint, dict):
            raise ValueError(f"{path}: expected a checkpoint dict, found {type(checkpoint).__name__}")
        return checkpoint
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        header = f.metadata() or {}
    meta = {"dataset_meta": json.loads(header.get("densevit_dataset_meta", "{}"))}
    if header.get("densevit_ema") == "true":
        meta["ema"] = True
    return {"state_dict": load_state_dict_file(path), "meta": meta}


def ema_note(checkpoint: Mapping[str, Any]) -> str | None:
    """What a checkpoint's ``state_dict`` is when it holds the exponential moving average (EMA) of a run's weights
    (BasicSR's ``params_ema``), else None.

    mmengine's ``EMAHook`` writes the average as ``state_dict``, so that every reader evaluates it, and keeps the
    trained weights (``module.``-prefixed) and the update count under ``ema_state_dict`` for resuming;
    ``tools/publish_model.py`` keeps the average only and marks it ``meta.ema``.
    """
    if "ema_state_dict" in checkpoint:
        return ("its weights are the exponential moving average (EMA) of the run's weights, which validation scored "
                "(the trained weights themselves are under ema_state_dict)")
    if (checkpoint.get("meta") or {}).get("ema"):
        return "its weights are the exponential moving average (EMA) of the run's weights (published)"
    return None


def _read_safetensors(path: Path) -> Any:
    try:
        from safetensors.torch import load_file
    except ImportError as err:
        raise ImportError(f"{path}: reading .safetensors files needs `pip install safetensors`") from err
    return load_file(str(path), device="cpu")


_READERS: dict[str, Callable[[Path], Any]] = {
    ".safetensors": _read_safetensors,
    **dict.fromkeys((".pth", ".pt", ".bin", ".ckpt"), read_torch_checkpoint),
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


# --- converters: pure functions on state dicts ---------------------------------------------------------------

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


_D2_RPN = re.compile(r"^proposal_generator\.rpn_head\.(conv(?:\.conv(\d+))?|objectness_logits|anchor_deltas)\."
                     r"(weight|bias)$")
_D2_BOX = re.compile(r"^roi_heads\.box_head\.(?:(\d+)\.)?(conv|fc)(\d+)\.(norm\.)?(weight|bias)$")
_D2_PREDICTOR = re.compile(r"^roi_heads\.box_predictor\.(?:(\d+)\.)?(cls_score|bbox_pred)\.(weight|bias)$")
_D2_MASK = re.compile(r"^roi_heads\.mask_head\.(mask_fcn(\d+)\.(norm\.)?|deconv\.|predictor\.)(weight|bias)$")


def _background_first(scores: Tensor) -> Tensor:
    """Class-score rows [classes..., background] (detectron2) -> [background, classes...] (torchvision)."""
    return torch.cat([scores[-1:], scores[:-1]])


def _zero_background(value: Tensor, rows: int) -> Tensor:
    """Per-class rows without a background set (detectron2) -> a zero set of ``rows`` first (torchvision indexes
    by label, 0 the background, and never reads it)."""
    return torch.cat([value.new_zeros((rows, *value.shape[1:])), value])


def convert_detectron2_heads(state_dict: Mapping[str, Tensor]) -> StateDict:
    """detectron2 R-CNN heads (``proposal_generator.*``, ``roi_heads.*``: StandardRPNHead, FastRCNNConvFCHead,
    FastRCNNOutputLayers, MaskRCNNConvUpsampleHead; Cascade's per-stage ModuleLists) -> densevit's ``MaskRCNN``
    names (torchvision's heads: ``rpn.head.*``, ``roi_heads[.stages.K].box_head.*``, ...); other keys are dropped.

    Class order: detectron2's class scores end with the background, torchvision's start with it, so the rows move;
    class-specific box deltas and mask logits have no background set in detectron2, and get a zero one (torchvision
    never reads it). A box head's fc layer ``fcJ`` follows its N convs and a flatten: index N + 2J - 1.
    """
    boxes = [m for m in map(_D2_BOX.match, state_dict) if m]
    convs = Counter(m[1] for m in boxes if m[2] == "conv" and not m[4] and m[5] == "weight")  # per stage
    out: StateDict = {}
    for key, value in state_dict.items():
        if m := _D2_RPN.match(key):
            part = {"objectness_logits": "cls_logits", "anchor_deltas": "bbox_pred"}.get(m[1], f"conv.{m[2] or 0}.0")
            out[f"rpn.head.{part}.{m[3]}"] = value
        elif m := _D2_BOX.match(key):
            stage, kind, index, norm, param = m.groups()
            where = f"roi_heads.stages.{stage}.box_head" if stage else "roi_heads.box_head"
            if kind == "conv":
                position = f"{int(index) - 1}.{1 if norm else 0}"
            else:  # after the stage's convs and the flatten
                position = str(convs[stage] + 2 * int(index) - 1)
            out[f"{where}.{position}.{param}"] = value
        elif m := _D2_PREDICTOR.match(key):
            stage, kind, param = m.groups()
            where = f"roi_heads.stages.{stage}.box_predictor" if stage else "roi_heads.box_predictor"
            if kind == "cls_score":
                value = _background_first(value)
            elif value.shape[0] != 4:  # class-specific deltas (Cascade's stages regress class-agnostic: 4 rows)
                value = _zero_background(value, 4)
            out[f"{where}.{kind}.{param}"] = value
        elif m := _D2_MASK.match(key):
            part, index, norm, param = m.groups()
            if index:
                out[f"roi_heads.mask_head.{int(index) - 1}.{1 if norm else 0}.{param}"] = value
            elif part == "deconv.":
                out[f"roi_heads.mask_predictor.conv5_mask.{param}"] = value
            else:
                out[f"roi_heads.mask_predictor.mask_fcn_logits.{param}"] = _zero_background(value, 1)
    return out


def _backbone_entries(state_dict: Mapping[str, Tensor], layout: str) -> Mapping[str, Tensor]:
    """A full detector / segmentor state dict -> its ``backbone.*`` entries without the prefix; others as given."""
    if not any(k.startswith("backbone.") for k in state_dict):
        return state_dict
    dropped = sum(not k.startswith("backbone.") for k in state_dict)
    if dropped:
        logger.info("%s checkpoint: %d neck/head entries are not backbone weights (not loaded)", layout, dropped)
    return {k[len("backbone."):]: v for k, v in state_dict.items() if k.startswith("backbone.")}


# ViT-CoMer's own modules (everything of ``ViTCoMer`` but its ViT, which it keeps under ``backbone.``).
_VIT_COMER_ADAPTER = ("level_embed", "spm.", "interactions.", "up.", "norm1.", "norm2.", "norm3.", "norm4.")
# Names of the older ViT-Adapter-style branch of the reference -> current names.
_VIT_COMER_OLD_NAMES = {"injector": "cti_tov", "extractor": "cti_toc", "extra_extractors": "extra_CTIs",
                        "multiconv": "mrfp"}
_VIT_COMER_OLD_NAME_RE = re.compile(r"\.(" + "|".join(_VIT_COMER_OLD_NAMES) + r")\.")
_VIT_COMER_LAYER_SCALE_RE = re.compile(r"^(blocks\.\d+)\.gamma([12])$")


def convert_vit_comer(state_dict: Mapping[str, Tensor], patch_size: int = 16) -> StateDict:
    """Official ViT-CoMer weights (or ViT-only weights) -> ``ViTCoMer`` keys.

    Accepts a backbone state dict or a full detector/segmentor one (only its ``backbone.*`` keys are kept), the
    current (``cti_tov``, ``cti_toc``, ``extra_CTIs``, ``mrfp``) or older (``injector``, ``extractor``,
    ``extra_extractors``, ``multiconv``) names. ViT keys go under ``backbone.`` with layer scale
    ``blocks.i.gamma1/2`` renamed to timm's ``blocks.i.ls1/ls2.gamma`` and pass through ``convert_timm_vit``
    (class token, final norm and head dropped; a patch-14 kernel resized to ``patch_size``). Weights already
    under ``ViTCoMer``'s names (the ViT under ``backbone.``, the adapter beside it) are returned unchanged.
    """
    if any(k.startswith("backbone.") for k in state_dict) and any(k.startswith(_VIT_COMER_ADAPTER) for k in state_dict):
        return dict(state_dict)
    adapter: StateDict = {}
    vit: StateDict = {}
    for key, value in _backbone_entries(state_dict, "ViT-CoMer").items():
        if key.startswith(_VIT_COMER_ADAPTER):
            adapter[_VIT_COMER_OLD_NAME_RE.sub(lambda m: f".{_VIT_COMER_OLD_NAMES[m.group(1)]}.", key)] = value
        else:
            vit[_VIT_COMER_LAYER_SCALE_RE.sub(r"\1.ls\2.gamma", key)] = value
    converted = {f"backbone.{k}": v for k, v in convert_timm_vit(vit, patch_size=patch_size).items()}
    return {**converted, **adapter}


# Buffers the Swin reference stores but densevit derives from the window size.
_SWIN_DERIVED = ("relative_position_index", "attn_mask")
# Classification-only entries of Swin (final norm, head).
_SWIN_CLASSIFIER = ("head.", "norm.")


def convert_swin_checkpoint(state_dict: Mapping[str, Tensor]) -> StateDict:
    """mmdet detection (``backbone.*``) or classification Swin / STViT-R weights -> ``SwinTransformer`` keys.

    Detection checkpoints keep only their ``backbone.`` entries (necks and heads are mmdet's, not densevit's);
    the derived buffers ``relative_position_index`` / ``attn_mask`` and a classifier's ``head`` / ``norm`` are
    dropped. Everything else keeps its name.
    """
    return {
        k: v for k, v in _backbone_entries(state_dict, "Swin").items()
        if k.rsplit(".", 1)[-1] not in _SWIN_DERIVED and not k.startswith(_SWIN_CLASSIFIER)
    }


def convert_timm_features(state_dict: Mapping[str, Tensor], feature_keys: set[str]) -> StateDict:
    """A timm classification model's keys -> the keys of timm's ``features_only`` wrapper of the same model.

    The wrappers keep the modules but rename them: ``FeatureListNet`` flattens the first Sequential level
    (``stages.0.x`` -> ``stages_0.x``), ``FeatureGetterNet`` nests the model under ``model.``. Keys matching
    neither (the classifier, stages after the last feature level) are dropped: the wrapper has no such module.
    """
    out: StateDict = {}
    dropped = []
    for key, value in state_dict.items():
        name = next((c for c in (key, key.replace(".", "_", 1), "model." + key) if c in feature_keys), None)
        if name is None:
            dropped.append(key)
        else:
            out[name] = value
    if dropped:
        logger.info("not in timm's feature model (classifier, unused stages): %s", _some(dropped))
    return out



# --- ViTPose (top-down pose) ---------------------------------------------------------------------------------

# ViTPose+ files hold mixture-of-experts MLPs and one head per dataset.
_VITPOSE_MOE = (".mlp.experts.", "associate_keypoint_heads.")


def convert_vitpose(state_dict: Mapping[str, Tensor]) -> StateDict:
    """Official ViTPose pose-model weights -> ``TopDownPose`` keys: ``keypoint_head.*`` -> ``head.*``.

    The backbone keys (``backbone.patch_embed.proj``, ``backbone.pos_embed`` [1, 1 + h * w, C],
    ``backbone.blocks.N.*``, ``backbone.last_norm``) are ``ViTPoseBackbone``'s already. ViTPose+ (MoE) files are
    refused: split them first with ViTPose's ``tools/model_split.py``.
    """
    moe = [k for k in state_dict if any(p in k for p in _VITPOSE_MOE)]
    if moe:
        raise ValueError(f"ViTPose+ checkpoint (mixture-of-experts keys such as {moe[0]!r}): split it into one "
                         "dataset's model with ViTPose's tools/model_split.py first")
    return {("head." + k[len("keypoint_head."):] if k.startswith("keypoint_head.") else k): v
            for k, v in state_dict.items()}


# mmpretrain's ViT block names -> ViTPoseBackbone's (timm's).
_MMPRETRAIN_BLOCK = ((".ln1.", ".norm1."), (".ln2.", ".norm2."), (".ffn.layers.0.0.", ".mlp.fc1."),
                     (".ffn.layers.1.", ".mlp.fc2."))


def convert_mmpose_vitpose(state_dict: Mapping[str, Tensor], num_positions: int | None = None) -> StateDict:
    """mmpose 1.x ViTPose weights (mmpretrain ViT, ``head.*``) -> ``TopDownPose`` keys.

    ``backbone.layers.N.{ln1,attn,ln2,ffn.layers.0.0,ffn.layers.1}`` -> ``backbone.blocks.N.{norm1,attn,norm2,
    mlp.fc1,mlp.fc2}``, ``backbone.patch_embed.projection`` -> ``.proj``, ``backbone.ln1`` -> ``backbone.last_norm``;
    ``head.*`` and ``data_preprocessor`` buffers are kept / dropped. mmpose 1.x builds the ViT without a class slot:
    its table [1, h * w, C] gets a zero class slot in front (so the folded table is the same); a file with one
    more entry than ``num_positions`` has its slot 0 dropped, as mmpretrain does when it loads one.
    """
    out: StateDict = {}
    for key, value in state_dict.items():
        if key.startswith("data_preprocessor."):
            continue
        if key.startswith("backbone.ln1."):
            key = "backbone.last_norm." + key[len("backbone.ln1."):]
        elif key.startswith("backbone.patch_embed.projection."):
            key = "backbone.patch_embed.proj." + key[len("backbone.patch_embed.projection."):]
        elif key.startswith("backbone.layers."):
            key = "backbone.blocks." + key[len("backbone.layers."):]
            for old, new in _MMPRETRAIN_BLOCK:
                key = key.replace(old, new)
        elif key == "backbone.pos_embed":
            if num_positions is not None and value.shape[1] == num_positions + 1:
                value = value[:, 1:]
            value = torch.cat([value.new_zeros(1, 1, value.shape[2]), value], dim=1)
        out[key] = value
    return out


def _vitpose_grid(num_positions: int) -> tuple[int, int]:
    """(h, w) tokens of a ViTPose table with ``num_positions`` entries: a 4:3 crop (256x192, 384x288), else square."""
    h = math.isqrt(num_positions * 4 // 3)
    if h % 4 == 0 and h * (h * 3 // 4) == num_positions:
        return h, h * 3 // 4
    side = math.isqrt(num_positions)
    if side * side == num_positions:
        return side, side
    raise ValueError(f"a ViTPose position table of {num_positions} entries is neither a 4:3 nor a square grid; "
                     "convert the file with convert_mae_vitpose(state, grid=(h, w))")


def convert_mae_vitpose(
    state_dict: Mapping[str, Tensor], grid: tuple[int, int], patch_size: int | None = None
) -> StateDict:
    """MAE pretraining weights -> ``ViTPoseBackbone`` keys, as ViTPose initialises its backbone.

    timm names as ``convert_timm_vit`` (class token, final norm and decoder dropped); the square position grid
    (14x14 at 224) is resized bicubically (align_corners False) to the crop's ``grid`` (h, w), the class slot
    kept. A smaller patch kernel (MAE ViT-H/14 into a patch-16 model) is zero-padded around, as ViTPose's
    default ``patch_padding='pad'`` does. ``last_norm`` is not in the file and starts fresh.
    """
    out = convert_timm_vit(state_dict)
    kernel = out.get("patch_embed.proj.weight")
    if patch_size is not None and kernel is not None and kernel.shape[-1] < patch_size:
        before = (patch_size - kernel.shape[-1]) // 2
        after = patch_size - kernel.shape[-1] - before
        out["patch_embed.proj.weight"] = F.pad(kernel, (before, after, before, after))
    pos = out.get("pos_embed")
    if pos is not None:
        side = math.isqrt(pos.shape[1] - 1)
        if tuple(grid) != (side, side):
            table = pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2).float()
            table = F.interpolate(table, size=tuple(grid), mode="bicubic", align_corners=False)
            out["pos_embed"] = torch.cat([pos[:, :1], table.flatten(2).transpose(1, 2).to(pos.dtype)], dim=1)
    return out

# --- the registry of layouts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Converter:
    """A checkpoint layout: how a file's keys become a module's, and which module keys the layout never holds.

    ``convert(file_state, module_state)`` returns the file's tensors under the module's names; it reads
    ``module_state`` (the target's state dict, ``{}`` when converting without a model) only for what the file
    cannot tell, such as the patch size. ``new_keys`` are regular expressions of module keys that are new in
    the dense model (relative positions, layer scale, an adapter): when the converted file holds no key matching
    one, the module keys matching it are expected to be missing. ``skip`` matches converted keys the module
    starts from scratch whatever the file holds (reported as skipped, their module keys as new).
    """

    convert: Callable[[Mapping[str, Tensor], Mapping[str, Tensor]], StateDict]
    about: str
    new_keys: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()


def _kernel_size(target: Mapping[str, Tensor], key: str) -> int | None:
    kernel = target.get(key)
    return kernel.shape[-1] if kernel is not None else None


def _as_densevit(state: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> StateDict:
    return dict(state)


def _timm(state: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> StateDict:
    return convert_timm_vit(state, patch_size=_kernel_size(target, "patch_embed.proj.weight"))


def _dinov2(state: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> StateDict:
    return convert_dinov2(state, patch_size=_kernel_size(target, "patch_embed.proj.weight") or 16)


def _hybrid_vit(state: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> StateDict:
    return convert_timm_vit(state)  # the patch kernel is skipped: the stem has no patchify projection


def _detectron2(state: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> StateDict:
    if not any(k.startswith("rpn.") for k in target):  # the pyramid alone (a config's pretrained, or no model)
        return convert_detectron2_vitdet(state)
    # a whole Mask R-CNN: the pyramid under its ``backbone``, the heads under torchvision's names
    pyramid = convert_detectron2_vitdet({k: v for k, v in state.items() if k.startswith("backbone.")})
    return {**{f"backbone.{k}": v for k, v in pyramid.items()}, **convert_detectron2_heads(state)}


def _vit_comer(state: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> StateDict:
    return convert_vit_comer(state, patch_size=_kernel_size(target, "backbone.patch_embed.proj.weight") or 16)


def _swin(state: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> StateDict:
    return convert_swin_checkpoint(state)


# TimmBackbone keeps timm's feature wrapper as ``body``.
_TIMM_BODY = "body."


def _timm_features(state: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> StateDict:
    feature_keys = {k.removeprefix(_TIMM_BODY) for k in target}
    return {_TIMM_BODY + k: v for k, v in convert_timm_features(state, feature_keys).items()}



def _positions(target: Mapping[str, Tensor], key: str) -> int | None:
    table = target.get(key)
    return table.shape[1] - 1 if table is not None else None


def _vitpose(state: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> StateDict:
    return convert_vitpose(state)


def _mmpose_vitpose(state: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> StateDict:
    return convert_mmpose_vitpose(state, _positions(target, "backbone.pos_embed"))


def _vitpose_mae(state: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> StateDict:
    positions = _positions(target, "pos_embed")
    if positions is None:  # converting without a model: keep the file's grid
        return convert_timm_vit(state)
    return convert_mae_vitpose(state, _vitpose_grid(positions), _kernel_size(target, "patch_embed.proj.weight"))

# Keys of a dense ViT that classification / self-supervised ViTs do not have.
_VIT_NEW = (r"\.rel_pos_[hw]$", r"\.ls[12]\.gamma$")

CONVERTERS: dict[str, Converter] = {
    "densevit": Converter(_as_densevit, "densevit's own key names (converted files, training checkpoints)"),
    "timm": Converter(_timm, "timm / DeiT / AugReg ViT -> ViT (patch kernel resized to the model's)", _VIT_NEW),
    "mae": Converter(_timm, "MAE pretraining (timm names under 'model') -> ViT", _VIT_NEW),
    "dinov2": Converter(_dinov2, "DINOv2 -> ViT (patch 14 kernel resized to the model's, 16 without one)",
                        _VIT_NEW),
    "hybrid_vit": Converter(_hybrid_vit, "timm / MAE / DINOv2 ViT -> HybridViT blocks and positions (fresh stem)",
                            _VIT_NEW, skip=(r"^patch_embed\.",)),
    "detectron2": Converter(_detectron2, "detectron2 ViTDet model file -> SimpleFeaturePyramid, or with its "
                            "R-CNN heads -> MaskRCNN (Cascade too)"),
    "vit_comer": Converter(
        _vit_comer, "official ViT-CoMer backbone / detector / segmentor, or ViT-only weights -> ViTCoMer",
        (r"^(" + "|".join(re.escape(p) for p in _VIT_COMER_ADAPTER) + ")", *_VIT_NEW),
    ),
    "swin": Converter(_swin, "mmdet Swin / released STViT-R-Swin detector, or ImageNet Swin -> SwinTransformer",
                      (r"^norm\d+\.",)),
    "timm_features": Converter(_timm_features, "timm classification model -> TimmBackbone", ("num_batches_tracked",)),
    "vitpose": Converter(_vitpose, "official ViTPose pose model (backbone.*, keypoint_head.*) -> TopDownPose"),
    "mmpose_vitpose": Converter(_mmpose_vitpose, "mmpose 1.x ViTPose (backbone.layers.*, head.*) -> TopDownPose"),
    "vitpose_mae": Converter(_vitpose_mae, "MAE pretraining -> ViTPoseBackbone (positions resized to the crop's "
                             "grid, class slot kept)", (r"^last_norm\.",)),
}


def get_converter(name: str) -> Converter:
    """The registered layout ``name``; an unknown name fails listing the known ones."""
    if name not in CONVERTERS:
        raise ValueError(f"unknown checkpoint converter {name!r}; known converters: {', '.join(CONVERTERS)}")
    return CONVERTERS[name]


# --- loading into a module -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadReport:
    """What ``load_weights`` did with a file, key by key (module key names)."""

    path: str
    converter: str
    loaded: list[str]
    new: list[str]  # module keys the file's layout does not have: left at init, as expected
    missing: list[str]  # module keys the file should have held but does not: left at init
    unexpected: list[str]  # converted file keys the module does not have: not loaded
    skipped: list[str]  # converted file keys the layout leaves out on purpose: not loaded
    mismatched: list[str] = field(default_factory=list)  # "key: file shape vs model shape", not loaded


def _some(keys: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _matches(key: str, patterns: Sequence[str]) -> bool:
    return any(re.search(p, key) for p in patterns)


def _resolve(module: nn.Module, converter: str | Converter | Callable | None) -> tuple[str, Converter]:
    if converter is None:
        converter = getattr(module, "default_converter", "densevit")
    if isinstance(converter, str):
        return converter, get_converter(converter)
    if isinstance(converter, Converter):
        return converter.about, converter
    if callable(converter):
        name = getattr(converter, "__name__", repr(converter))
        return name, Converter(lambda state, target: dict(converter(state)), name)
    raise TypeError(f"converter must be a name ({', '.join(CONVERTERS)}), a Converter or a function, "
                    f"found {converter!r}")


TIMM_PREFIX = "timm:"


def resolve_weights(path: str | Path) -> Path:
    """A weights file path, or ``timm:<model name>[.<tag>]``: the file timm downloaded for that model, found in the
    local Hugging Face cache (nothing is downloaded: densevit runs offline)."""
    if not str(path).startswith(TIMM_PREFIX):
        return Path(path)
    import timm
    from huggingface_hub import try_to_load_from_cache

    name = str(path)[len(TIMM_PREFIX):]
    try:
        hub_id = timm.models.get_pretrained_cfg(name).hf_hub_id
    except (RuntimeError, AttributeError, ValueError) as err:
        raise ValueError(f"{path}: timm knows no pretrained model {name!r} ({err})") from err
    if not hub_id:
        raise ValueError(f"{path}: timm's {name!r} has no Hugging Face weights to look up")
    for filename in ("model.safetensors", "pytorch_model.bin"):
        cached = try_to_load_from_cache(hub_id.split("@")[0], filename)
        if isinstance(cached, str):
            return Path(cached)
    raise FileNotFoundError(
        f"{path}: the weights of {name!r} ({hub_id}) are not in the local Hugging Face cache; fetch them once where "
        f"there is internet: python -c \"import timm; timm.create_model('{name}', pretrained=True)\" (or set "
        "HF_HUB_CACHE to a copied cache), or give the file's path")


def load_weights(
    module: nn.Module,
    path: str | Path,
    converter: str | Converter | Callable[[Mapping[str, Tensor]], Mapping[str, Tensor]] | None = None,
    *,
    strict: bool = True,
    expected_missing: Sequence[str] = (),
) -> LoadReport:
    """Load a checkpoint file (or ``timm:<name>``, see ``resolve_weights``) into a built ``module`` through
    ``converter``; returns and logs a ``LoadReport``.

    ``converter`` is a ``CONVERTERS`` name, a ``Converter``, or a function from the file's tensors to the
    module's names; ``None`` takes the module's ``default_converter`` (``"densevit"``, no renaming, if it has
    none). ``expected_missing`` adds regular expressions to the layout's ``new_keys``. A tensor whose shape
    differs from the module's, or a file that shares no key with the module, is always an error naming the file;
    with ``strict`` so are missing and unexpected keys (``strict=False`` logs them as warnings and loads the rest,
    for fine-tuning from another model). Keys new in the dense model are logged as info.
    """
    path = resolve_weights(path)
    return load_state(module, load_state_dict_file(path), str(path), converter, strict=strict,
                      expected_missing=expected_missing)


def load_state(
    module: nn.Module,
    raw: Mapping[str, Tensor],
    source: str,
    converter: str | Converter | Callable[[Mapping[str, Tensor]], Mapping[str, Tensor]] | None = None,
    *,
    strict: bool = True,
    expected_missing: Sequence[str] = (),
    skip_mismatched: bool = False,
) -> LoadReport:
    """``load_weights`` on tensors already read (``source`` names where they come from in messages).

    ``skip_mismatched`` (fine-tuning from another model, e.g. another class count; needs ``strict=False``) leaves
    tensors whose shapes differ at their initial values and lists them in the report instead of failing.
    """
    if skip_mismatched and strict:
        raise ValueError("load_state: skip_mismatched needs strict=False")
    name = type(module).__name__
    converter_name, layout = _resolve(module, converter)
    own = module.state_dict()
    state = layout.convert(raw, own)
    skipped = [k for k in state if _matches(k, layout.skip)]
    state = {k: v for k, v in state.items() if k not in skipped}
    other_shape = [k for k, v in state.items() if k in own and v.shape != own[k].shape]
    mismatched = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in other_shape]
    if mismatched and skip_mismatched:
        state = {k: v for k, v in state.items() if k not in other_shape}
    elif mismatched:
        raise ValueError(f"{source}: tensor shapes differ from {name} (converter {converter_name}): "
                         + "; ".join(mismatched))
    if not any(k in own for k in state):
        raise ValueError(
            f"{source}: none of its {len(raw)} keys (e.g. {next(iter(raw))!r}) is a key of {name} "
            f"(e.g. {next(iter(own))!r}) after converter {converter_name}; wrong checkpoint or converter?"
        )
    # A kind of key the converted file does not hold at all is new in the dense model; some but not all is a gap.
    new_patterns = [p for p in (*layout.new_keys, *expected_missing) if not any(re.search(p, k) for k in state)]
    new_patterns += layout.skip
    absent = [k for k in own if k not in state and k not in other_shape]
    new = [k for k in absent if _matches(k, new_patterns)]
    missing = [k for k in absent if k not in new]
    unexpected = [k for k in state if k not in own]
    report = LoadReport(source, converter_name, [k for k in state if k in own], new, missing, unexpected,
                        skipped, mismatched)
    if strict and (missing or unexpected):
        problems = []
        if missing:
            problems.append(f"{len(missing)} tensors of {name} are not in the checkpoint: {_some(missing)}")
        if unexpected:
            problems.append(f"{len(unexpected)} checkpoint tensors are not in {name}: {_some(unexpected)}")
        raise ValueError(f"{source} (converter {converter_name}): " + "; ".join(problems)
                         + "; wrong checkpoint or converter? (strict=False loads what matches)")
    module.load_state_dict({k: state[k] for k in report.loaded}, strict=False)
    _log(report, name)
    return report


def _log(report: LoadReport, name: str) -> None:
    logger.info("loaded %d tensors of %s from %s (converter %s)", len(report.loaded), name, report.path,
                report.converter)
    if report.new:
        logger.info("new in %s, initialised fresh (expected): %s", name, _some(report.new))
    if report.skipped:
        logger.info("%s: not loaded, %s starts them fresh: %s", report.path, name, _some(report.skipped))
    if report.missing:
        logger.warning("%s: keys of %s not in the checkpoint (left at init): %s", report.path, name,
                       _some(report.missing))
    if report.unexpected:
        logger.warning("%s: checkpoint keys not used by %s: %s", report.path, name, _some(report.unexpected))
    if report.mismatched:
        logger.warning("%s: tensors of another shape, left at init in %s: %s", report.path, name,
                       _some(report.mismatched))
