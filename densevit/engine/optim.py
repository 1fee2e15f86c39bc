"""Parameter groups for AdamW: ViTDet's layer-wise lr decay and no weight decay on norms / position tables."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from densevit.layers import LayerNorm2d

__all__ = ["param_groups"]

# By type, not by class name: ``ConvNorm`` (a conv that owns a norm) must keep weight decay on its conv weight.
_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.modules.batchnorm._NormBase, LayerNorm2d)


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
    A ``layer_decay`` other than 1 on a model without a ViT is an error rather than silently ignored.
    """
    vit = _find_vit(model) if layer_decay != 1.0 else None
    if layer_decay != 1.0 and vit is None:
        raise ValueError(f"optimizer layer_decay={layer_decay} needs a plain ViT in the model (a module with "
                         f"layer_id() and depth, e.g. densevit.backbones.ViT); {type(model).__name__} has none. "
                         "Remove layer_decay from the optimizer config for Swin or timm backbones.")
    norm_params = {id(p) for m in model.modules() if isinstance(m, _NORMS) for p in m.parameters(recurse=False)}
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
