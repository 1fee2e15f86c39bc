"""Multi-scale deformable attention (Deformable DETR) in pure PyTorch, no compiled op.

Every (query, head) reads ``levels * points`` bilinear samples; a sample is the weighted sum of its four corner
rows of the value map, so the whole op is one weighted bag of rows per (query, head). ``F.embedding_bag`` computes
exactly that in one fused, parallel kernel on CPU and GPU, never materialising the gathered rows (through
``densevit.ops.weighted_bag``, whose CPU backward is 5x faster than embedding_bag's own).
``ms_deform_attn_grid_sample`` is the straightforward per-level ``grid_sample`` form of the same formula, kept as
the reference for tests and benchmarks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densevit.ops.weighted_bag import weighted_bag

__all__ = ["MSDeformAttn", "ms_deform_attn", "ms_deform_attn_grid_sample", "reference_points"]


def _check_inputs(value: Tensor, spatial_shapes: Sequence[tuple[int, int]], sampling_locations: Tensor,
                  attention_weights: Tensor) -> None:
    if value.dim() != 4 or sampling_locations.dim() != 6 or attention_weights.dim() != 5:
        raise ValueError(
            "ms_deform_attn: expected value [B, S, M, D], sampling_locations [B, Lq, M, L, P, 2] and "
            f"attention_weights [B, Lq, M, L, P], found {tuple(value.shape)}, {tuple(sampling_locations.shape)} "
            f"and {tuple(attention_weights.shape)}"
        )
    total = sum(h * w for h, w in spatial_shapes)
    if total != value.shape[1]:
        raise ValueError(f"ms_deform_attn: spatial_shapes {list(spatial_shapes)} hold {total} positions, "
                         f"value has {value.shape[1]}")
    if len(spatial_shapes) != sampling_locations.shape[3]:
        raise ValueError(f"ms_deform_attn: {len(spatial_shapes)} levels in spatial_shapes, "
                         f"{sampling_locations.shape[3]} in sampling_locations")
    if sampling_locations.shape[:-1] != attention_weights.shape:
        raise ValueError(f"ms_deform_attn: sampling_locations {tuple(sampling_locations.shape)} and "
                         f"attention_weights {tuple(attention_weights.shape)} disagree")


def ms_deform_attn(value: Tensor, spatial_shapes: Sequence[tuple[int, int]], sampling_locations: Tensor,
                   attention_weights: Tensor) -> Tensor:
    """Deformable attention sampling: bilinear, zero padding, ``align_corners=False``.

    value: [B, S, M, D] (S = sum of H_l * W_l, levels concatenated row-major); spatial_shapes: (H_l, W_l) per level;
    sampling_locations: [B, Lq, M, L, P, 2] as (x, y) in [0, 1] of each level; attention_weights: [B, Lq, M, L, P].
    Returns [B, Lq, M * D].
    """
    _check_inputs(value, spatial_shapes, sampling_locations, attention_weights)
    B, _, M, D = value.shape
    _, Lq, _, L, P, _ = sampling_locations.shape
    K = L * P  # samples per (query, head)
    N = B * Lq * M  # bags
    device, dtype = value.device, sampling_locations.dtype
    # Zero-bordered copy of the levels (1 before, 2 after each axis): every clamped corner is then a real row and
    # no masks are needed. Row (b * Sp + position) * M + m of the [B * Sp * M, D] table.
    padded = [(h + 3) * (w + 3) for h, w in spatial_shapes]
    starts = [sum(padded[:i]) for i in range(L)]
    table = value.new_zeros(B, sum(padded), M, D)
    for level, (h, w), start in zip(value.split([h * w for h, w in spatial_shapes], dim=1), spatial_shapes, starts,
                                    strict=True):
        inner = table[:, start:start + (h + 3) * (w + 3)].view(B, h + 3, w + 3, M, D)[:, 1:h + 1, 1:w + 1]
        inner.copy_(level.reshape(B, h, w, M, D))
    table = table.view(-1, D)
    index_dtype = torch.int32 if table.shape[0] < 2**31 else torch.long  # halves the index traffic

    def per_sample(values: list[int], dtype: torch.dtype) -> Tensor:  # one entry per level -> [K]
        return torch.tensor(values, device=device, dtype=dtype).repeat_interleave(P)

    # Work on [B, Lq, M, K] planes with [K] constants: long contiguous loops, no tiny broadcast dimensions.
    size = torch.stack([per_sample([w for _, w in spatial_shapes], dtype),
                        per_sample([h for h, _ in spatial_shapes], dtype)], dim=-1)  # [K, 2] as (W, H)
    # Pixel coordinates (grid_sample, align_corners=False) shifted by the border: loc * size - 0.5 + 1.
    # Clamping to [0, size + 1] only moves points that are entirely in the zero border (output and gradient 0).
    pix = torch.addcmul(sampling_locations.new_tensor(0.5), sampling_locations.reshape(B, Lq, M, K, 2), size)
    pix = torch.minimum(pix.clamp_min(0), size + 1)
    corner = pix.floor()
    frac_x, frac_y = (pix - corner).unbind(-1)
    col, row = corner.to(index_dtype).unbind(-1)

    row_stride = per_sample([(w + 3) * M for _, w in spatial_shapes], index_dtype)
    base = (per_sample(starts, index_dtype) * M
            + torch.arange(B, device=device, dtype=index_dtype).view(B, 1, 1, 1) * (table.shape[0] // B)
            + torch.arange(M, device=device, dtype=index_dtype).view(M, 1))  # [B, 1, M, K]
    top_left = (row * row_stride + col * M + base).view(N, 1, K)
    # Rows of the corners (y, x) = (0, 0), (0, 1), (1, 0), (1, 1): [N, 4, K].
    rows = top_left + torch.stack([torch.zeros_like(row_stride), torch.full_like(row_stride, M), row_stride,
                                   row_stride + M])
    attn = attention_weights.reshape(B, Lq, M, K)
    y1 = frac_y * attn
    y0 = attn - y1
    x0 = 1 - frac_x
    weight = torch.stack([y0 * x0, y0 * frac_x, y1 * x0, y1 * frac_x], dim=-2).view(N, 4 * K)
    out = weighted_bag(rows.view(N, 4 * K), table, weight.to(value.dtype))
    return out.view(B, Lq, M * D)


def ms_deform_attn_grid_sample(value: Tensor, spatial_shapes: Sequence[tuple[int, int]], sampling_locations: Tensor,
                               attention_weights: Tensor) -> Tensor:
    """The same formula with one ``F.grid_sample`` per level (the textbook form; reference for tests)."""
    _check_inputs(value, spatial_shapes, sampling_locations, attention_weights)
    B, _, M, D = value.shape
    _, Lq, _, L, P, _ = sampling_locations.shape
    levels = value.split([h * w for h, w in spatial_shapes], dim=1)
    grids = 2 * sampling_locations - 1
    samples = []
    for lvl, (h, w) in enumerate(spatial_shapes):
        value_l = levels[lvl].permute(0, 2, 3, 1).reshape(B * M, D, h, w)
        grid_l = grids[:, :, :, lvl].transpose(1, 2).flatten(0, 1)  # [B * M, Lq, P, 2]
        samples.append(F.grid_sample(value_l, grid_l, mode="bilinear", padding_mode="zeros", align_corners=False))
    sampled = torch.stack(samples, dim=-2).flatten(-2)  # [B * M, D, Lq, L * P]
    weights = attention_weights.transpose(1, 2).reshape(B * M, 1, Lq, L * P)
    out = (sampled * weights).sum(-1).view(B, M * D, Lq)
    return out.transpose(1, 2)


def reference_points(spatial_shapes: Sequence[tuple[int, int]], device: torch.device | None = None,
                     dtype: torch.dtype = torch.float32) -> Tensor:
    """Normalised (x, y) centres of every position of every level, levels concatenated: [1, sum H*W, 1, 2]."""
    points = []
    for h, w in spatial_shapes:
        ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) / h
        xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) / w
        points.append(torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2))
    return torch.cat(points)[None, :, None]


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention (Deformable DETR) with ViT-Adapter's value ratio.

    ``value_proj`` maps ``d_model`` to ``d_model * value_ratio`` channels split over ``n_heads``; every head samples
    ``n_points`` points per level around the query's reference point, weighted by a softmax over levels x points.
    """

    def __init__(self, d_model: int = 256, n_levels: int = 4, n_heads: int = 8, n_points: int = 4,
                 value_ratio: float = 1.0) -> None:
        super().__init__()
        value_dim = int(d_model * value_ratio)
        if value_dim % n_heads != 0:
            raise ValueError(f"MSDeformAttn: value channels d_model * value_ratio = {value_dim} must be divisible "
                             f"by n_heads = {n_heads}")
        self.d_model = d_model
        self.n_levels = n_levels
        self.n_heads = n_heads
        self.n_points = n_points
        self.value_dim = value_dim
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, value_dim)
        self.output_proj = nn.Linear(value_dim, d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Deformable DETR init: offsets on a circle per head (radius = point index), uniform attention."""
        nn.init.zeros_(self.sampling_offsets.weight)
        angles = torch.arange(self.n_heads, dtype=torch.float32) * (2.0 * math.pi / self.n_heads)
        directions = torch.stack([angles.cos(), angles.sin()], -1)
        directions = directions / directions.abs().max(-1, keepdim=True).values  # onto the unit square
        radius = torch.arange(1, self.n_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        grid = directions.view(self.n_heads, 1, 1, 2) * radius  # [M, 1, P, 2]
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.expand(-1, self.n_levels, -1, -1).reshape(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.zeros_(self.value_proj.bias)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def forward(self, query: Tensor, ref_points: Tensor, value: Tensor,
                spatial_shapes: Sequence[tuple[int, int]]) -> Tensor:
        """query: [B, Lq, C]; ref_points: [B or 1, Lq, L or 1, 2] (x, y) in [0, 1]; value: [B, S, C] -> [B, Lq, C]."""
        B, Lq, _ = query.shape
        M, L, P = self.n_heads, self.n_levels, self.n_points
        if len(spatial_shapes) != L:
            raise ValueError(f"MSDeformAttn: built for {L} levels, given spatial_shapes {list(spatial_shapes)}")
        v = self.value_proj(value).view(B, value.shape[1], M, self.value_dim // M)
        offsets = self.sampling_offsets(query).view(B, Lq, M, L, P, 2)
        # Softmax over levels x points. Along a short last dim PyTorch's CPU softmax is slow; over the middle
        # dim of the transposed copy it is 4x faster.
        logits = self.attention_weights(query).view(B, Lq, M, L * P).transpose(-1, -2).contiguous()
        weights = logits.softmax(-2).transpose(-1, -2).view(B, Lq, M, L, P)
        # Like the reference kernel, sample in float32 under autocast: bf16 locations would be off by pixels.
        with torch.autocast(device_type=query.device.type, enabled=False):
            dtype = torch.promote_types(v.dtype, torch.float32)
            # Offsets are in pixels of each level: locations = ref + offset / (W_l, H_l), computed on [..., L*P*2]
            # rows (a materialised per-sample ref) because broadcasting over a last dim of 2 is slow on the CPU.
            inv_size = torch.tensor([[1 / w, 1 / h] for h, w in spatial_shapes], dtype=dtype, device=query.device)
            ref = ref_points.to(dtype)[:, :, None, :, None, :].expand(-1, -1, 1, L, P, 2).reshape(-1, Lq, 1, L * P * 2)
            locations = torch.addcmul(ref, offsets.to(dtype).view(B, Lq, M, L * P * 2),
                                      inv_size.view(L, 1, 2).expand(L, P, 2).reshape(-1))
            out = ms_deform_attn(v.to(dtype), spatial_shapes, locations.view(B, Lq, M, L, P, 2), weights.to(dtype))
        return self.output_proj(out)
