"""STViT-R (Chang et al., CVPR 2023) on a plain ViT: the middle blocks run on a few semantic tokens, then recover.

The ViT's own blocks play the dumbbell roles of ``densevit.ops.dumbbell`` (semantic-token initialisation, local
and global attention among semantic tokens, recovery of the image tokens), each reusing the pretrained weights
of the block it replaces: its ``qkv`` splits into the query and key/value projections (``Block.queries`` /
``Block.keys_values``). The released Swin variant is ``densevit.backbones.swin_stvit_r``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from densevit.backbones.interface import ShapeSpec
from densevit.ops.dumbbell import DumbbellConfig, RoleBlock, apply_role, check_roles

__all__ = ["STViTR", "middle_dumbbell_roles"]


def middle_dumbbell_roles(depth: int, early: int = 3, late: int = 3) -> tuple[str, ...]:
    """One unit between image blocks: ``early`` x image, init, local / global alternating, recover, ``late`` x image.

    With depth 12 and the defaults, blocks 3-8 form the unit: the plain-ViT default (-35% FLOPs on ViTDet-B).
    """
    middle = depth - early - late - 2
    if early < 0 or late < 0 or middle < 0:
        raise ValueError(f"middle_dumbbell_roles: depth {depth} cannot hold {early} early and {late} late image "
                         "blocks plus 'init' and 'recover'")
    semantic = tuple("local" if i % 2 == 0 else "global" for i in range(middle))
    return ("image",) * early + ("init", *semantic, "recover") + ("image",) * late


# --- the plain-ViT adapter ------------------------------------------------------------------------------------


class STViTR(nn.Module):
    """STViT-R on a plain ViT: its blocks play the roles in ``roles``; output NCHW maps at stride ``patch_size``.

    ``vit`` is a built ``densevit.backbones.vit.ViT`` (pretrained weights already loaded). ``roles`` gives one role
    per block (default: ``middle_dumbbell_roles(depth)``, -35% FLOPs on ViTDet-B at 1024). ``out_indices`` must
    name blocks that leave image tokens (``image`` / ``recover``); with the single default output the adapter
    fits ``SimpleFeaturePyramid``. Padded keys are masked exactly by default (``pad_mask="valid"``).
    """

    def __init__(
        self,
        vit: nn.Module,
        *,
        roles: Sequence[str] | None = None,
        window: int = 7,
        pooled: int = 3,
        init_kernel: int = 14,
        refine_kernel: int = 21,
        recover_kernel: int = 27,
        pad_mask: str = "valid",
        out_indices: Sequence[int] = (-1,),
    ) -> None:
        super().__init__()
        missing = [a for a in ("embed", "blocks", "embed_dim", "patch_size", "depth") if not hasattr(vit, a)]
        if missing:
            raise ValueError(f"STViTR needs a densevit ViT (embed, blocks, embed_dim, patch_size, depth); "
                             f"{type(vit).__name__} lacks {missing}")
        depth = vit.depth
        roles = tuple(roles) if roles is not None else middle_dumbbell_roles(depth)
        if len(roles) != depth:
            raise ValueError(f"STViTR: {len(roles)} roles given for a ViT of depth {depth}")
        check_roles(roles, "STViTR")
        not_role = [i for i, (blk, role) in enumerate(zip(vit.blocks, roles, strict=True))
                    if role != "image" and not isinstance(blk, RoleBlock)]
        if not_role:
            raise ValueError(f"STViTR: blocks {not_role} of {type(vit).__name__} lack the RoleBlock methods "
                             "(queries, keys_values, queries_keys_values, attend, attention_residual, "
                             "mlp_residual)")
        outs = tuple(i + depth if i < 0 else i for i in out_indices)
        bad = [i for i in outs if not 0 <= i < depth or roles[i] not in ("image", "recover")]
        if not outs or bad or list(outs) != sorted(set(outs)):
            raise ValueError(f"STViTR: out_indices {tuple(out_indices)} must be increasing blocks whose role is "
                             f"'image' or 'recover' (roles: {roles})")
        self.vit = vit
        self.roles = roles
        self.cfg = DumbbellConfig(window, pooled, init_kernel, refine_kernel, recover_kernel, pad_mask)
        self.out_indices = outs
        self.output_shapes = (ShapeSpec(vit.embed_dim, vit.patch_size),) * len(outs)

    def forward(self, x: Tensor) -> list[Tensor]:
        """x: [B, 3, H, W] -> one [B, C, ceil(H / p), ceil(W / p)] map per entry of ``out_indices``."""
        x = self.vit.embed(x)
        s = None
        outs = []
        for i, (block, role) in enumerate(zip(self.vit.blocks, self.roles, strict=True)):
            step = partial(apply_role, role, block, cfg=self.cfg)
            if getattr(self.vit, "use_act_checkpoint", False) and self.training:
                x, s = checkpoint(step, x, s, use_reentrant=False)
            else:
                x, s = step(x, s)
            if i in self.out_indices:
                outs.append(x.permute(0, 3, 1, 2))
        return outs
