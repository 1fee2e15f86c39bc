"""Parameter groups for AdamW: ViTDet's layer-wise lr decay and no weight decay on norms / position tables."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

__all__ = ["param_groups"]

_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)


def _find_vit(model: nn.Module) -> tuple[str, nn.Module] | None:
    """The first submodule that numbers its layers (``layer_id``) and where it sits."""
    for name, module in model.named_modules():
        if hasattr(module, "layer_id") and hasattr(module, "depth"):
            return (name + "." if name else ""), module
    return None


def param_groups(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    layer_decay: float = 1.0,
    no_decay_names: Sequence[str] = ("pos_embed",),
) -> list[dict]:
    """One group per (lr multiplier, weight decay); lr x ``layer_decay ** (L + 1 - layer_id)``.

    ``layer_id`` is 0 for the patch/position embedding, i + 1 for ViT block i and L + 1 for everything else
    (adapters, necks, heads), as ViTDet does. Norm parameters and ``no_decay_names`` get no weight decay.
    """
    vit = _find_vit(model) if layer_decay != 1.0 else None
    norm_params = {id(p) for m in model.modules() if isinstance(m, _NORMS) or "Norm" in type(m).__name__
                   for p in m.parameters(recurse=False)}
    groups: dict[tuple[float, float], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        scale = 1.0
        if vit is not None:
            prefix, net = vit
            depth = net.depth
            layer = net.layer_id(name[len(prefix):]) if name.startswith(prefix) else depth + 1
            scale = layer_decay ** (depth + 1 - layer)
        no_decay = id(p) in norm_params or any(n in name.split(".")[-1] for n in no_decay_names)
        wd = 0.0 if no_decay else weight_decay
        group = groups.setdefault((scale, wd), {"params": [], "lr": lr * scale, "weight_decay": wd, "lr_mult": scale})
        group["params"].append(p)
    return list(groups.values())
