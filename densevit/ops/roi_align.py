"""RoIAlign over one or several feature maps in pure PyTorch: the same numbers as ``torchvision.ops.roi_align``.

Every output bin averages ``g_h x g_w`` bilinear samples, and a sample is the weighted sum of its four corner
pixels, so a bin is one weighted bag of feature rows (``densevit.ops.weighted_bag``) with at most ``4 g_h g_w``
entries. On the CPU, forward + backward is 7-8x faster than torchvision's kernel (whose backward is a
single-threaded scatter) with 2x2 samples per bin, 1.1-1.7x with adaptive sampling on 1024 px images
(``tools/benchmark_roi_align.py``). All levels of a pyramid go through one bag, each RoI reading its own level.

Sampling follows torchvision exactly: with ``aligned=True`` pixel centres sit at +0.5 (detectron2's ROIAlignV2);
``sampling_ratio <= 0`` takes ``ceil(roi_size / output_size)`` samples per bin axis; samples more than one pixel
outside the map read 0, others are clamped to the border.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torchvision
from torch import Tensor, nn

from densevit.ops.weighted_bag import weighted_bag

__all__ = [
    "PyramidRoIAlign",
    "fpn_levels",
    "multilevel_roi_align",
    "multilevel_roi_align_torchvision",
    "roi_align",
]


def fpn_levels(boxes: Tensor, first_level: int, num_levels: int) -> Tensor:
    """FPN's level rule, floor(4 + log2(sqrt(area) / 224 + 1e-8)) clamped to the pyramid, for boxes [R, 4]
    (x1, y1, x2, y2): index [R] into the levels (0 = ``first_level``)."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    level = torch.floor(4 + torch.log2(area.sqrt() / 224 + 1e-8))
    return (level.clamp(first_level, first_level + num_levels - 1) - first_level).long()


def _axis_taps(start: Tensor, length: Tensor, grid: Tensor, size: Tensor, output_size: int, max_grid: int
               ) -> tuple[Tensor, Tensor]:
    """Corner indices and weights along one axis for every (RoI, bin, sample): two [R, S, G, 2] tensors.

    start, length: RoI start and extent in feature pixels; grid: samples per bin; size: the map's extent; all [R].
    """
    view = (-1, 1, 1)
    bin_size = (length / output_size).view(view)
    bins = torch.arange(output_size, device=start.device, dtype=start.dtype).view(1, -1, 1)
    samples = torch.arange(max_grid, device=start.device, dtype=start.dtype).view(1, 1, -1)
    grid, size = grid.view(view), size.view(view)
    pos = start.view(view) + bins * bin_size + (samples + 0.5) * bin_size / grid.clamp(min=1)  # [R, S, G]
    valid = (samples < grid) & (pos >= -1) & (pos <= size)
    pos = pos.clamp(min=0)
    low = pos.floor().clamp(max=size - 1)
    high = (low + 1).clamp(max=size - 1)
    frac = torch.where(low >= size - 1, torch.zeros_like(pos), pos - low)
    weight = torch.stack([1 - frac, frac], dim=-1) * valid.unsqueeze(-1)
    return torch.stack([low, high], dim=-1).long(), weight


def multilevel_roi_align(features: Sequence[Tensor], rois: Tensor, levels: Tensor, output_size: int,
                         spatial_scales: Sequence[float], sampling_ratio: int = 0, aligned: bool = True) -> Tensor:
    """RoIAlign with every RoI read from its own level: features [N, C, H_l, W_l] per level, rois [R, 5]
    (batch index, x1, y1, x2, y2 in input pixels), levels [R] (index into ``features``) -> [R, C, S, S]."""
    if len(features) != len(spatial_scales):
        raise ValueError(f"multilevel_roi_align: {len(features)} feature maps but {len(spatial_scales)} scales")
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f"multilevel_roi_align: rois must be [R, 5] (batch index, x1, y1, x2, y2), "
                         f"found {tuple(rois.shape)}")
    channels = features[0].shape[1]
    table = torch.cat([f.permute(0, 2, 3, 1).reshape(-1, channels) for f in features])  # [sum N H_l W_l, C]
    if len(rois) == 0:
        return table.new_zeros((0, channels, output_size, output_size))
    device, dtype = rois.device, rois.dtype

    def per_level(values: Sequence[float]) -> Tensor:  # one value per level -> [R]
        return torch.tensor(values, device=device, dtype=dtype)[levels]

    heights, widths = per_level([f.shape[2] for f in features]), per_level([f.shape[3] for f in features])
    starts = torch.tensor([0] + [f.numel() // channels for f in features[:-1]], device=device).cumsum(0)[levels]
    base = starts + rois[:, 0].long() * (heights * widths).long()  # table row of each RoI's map origin
    box = rois[:, 1:] * per_level(spatial_scales)[:, None] - (0.5 if aligned else 0.0)
    width, height = box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]
    if not aligned:  # torchvision's legacy mode: a RoI is at least one pixel
        width, height = width.clamp(min=1), height.clamp(min=1)
    if sampling_ratio > 0:
        grid_h = grid_w = torch.full_like(width, sampling_ratio)
    else:
        grid_h, grid_w = torch.ceil(height / output_size), torch.ceil(width / output_size)
    # Bags have a fixed length per call, so RoIs are grouped by their samples per bin (a handful of groups with
    # adaptive sampling) instead of all being padded to the largest grid.
    group = torch.maximum(grid_h, grid_w).clamp(min=1).long()
    s = output_size
    out = table.new_empty((len(rois), s, s, channels))
    for g in group.unique().tolist():  # g: this group's samples per bin axis (the bag holds 4 g^2 entries)
        idx = torch.nonzero(group == g).squeeze(1)
        rows_y, weight_y = _axis_taps(box[idx, 1], height[idx], grid_h[idx], heights[idx], s, g)
        rows_x, weight_x = _axis_taps(box[idx, 0], width[idx], grid_w[idx], widths[idx], s, g)
        # Outer product of the axes: [R, S_y, G_y, 2] x [R, S_x, G_x, 2] -> [R, S_y, S_x, G_y, 2, G_x, 2].
        per_roi, along_y, along_x = (-1, 1, 1, 1, 1, 1, 1), (-1, s, 1, g, 2, 1, 1), (-1, 1, s, 1, 1, g, 2)
        rows = (base[idx].view(per_roi) + rows_y.view(along_y) * widths[idx].long().view(per_roi)
                + rows_x.view(along_x))
        count = (grid_h[idx] * grid_w[idx]).clamp(min=1)
        weight = weight_y.view(along_y) * weight_x.view(along_x) / count.view(per_roi)
        bins = len(idx) * s * s
        out[idx] = weighted_bag(rows.reshape(bins, -1), table, weight.reshape(bins, -1).to(table.dtype)).view(
            len(idx), s, s, channels)
    return out.permute(0, 3, 1, 2)


def roi_align(input: Tensor, rois: Tensor, output_size: int, spatial_scale: float = 1.0, sampling_ratio: int = 0,
              aligned: bool = True) -> Tensor:
    """``torchvision.ops.roi_align`` for rois [R, 5]: input [N, C, H, W] -> [R, C, S, S]."""
    return multilevel_roi_align([input], rois, rois.new_zeros(len(rois), dtype=torch.long), output_size,
                                [spatial_scale], sampling_ratio, aligned)


def multilevel_roi_align_torchvision(features: Sequence[Tensor], rois: Tensor, levels: Tensor, output_size: int,
                                     spatial_scales: Sequence[float], sampling_ratio: int = 0,
                                     aligned: bool = True) -> Tensor:
    """``multilevel_roi_align`` through torchvision's kernel, level by level (as its ``MultiScaleRoIAlign``)."""
    out = features[0].new_zeros((len(rois), features[0].shape[1], output_size, output_size))
    for i, (feature, scale) in enumerate(zip(features, spatial_scales, strict=True)):
        idx = torch.nonzero(levels == i).squeeze(1)
        if len(idx):
            values = torchvision.ops.roi_align(feature, rois[idx], output_size, scale, sampling_ratio, aligned)
            out = out.to(values.dtype)  # roi_align may run in float32 under autocast
            out[idx] = values
    return out


class PyramidRoIAlign(nn.Module):
    """RoIAlign on a feature pyramid, each box read from the level its size selects (detectron2's ``ROIPooler``).

    Level of a box: floor(4 + log2(sqrt(area) / 224 + 1e-8)), clamped to the pyramid (FPN's rule: a 224 px box
    reads p4). ``aligned=True`` is detectron2's ROIAlignV2 (ViTDet's), whose pixel centres sit at +0.5;
    ``aligned=False`` is torchvision's ``MultiScaleRoIAlign``. Drop-in for the latter inside torchvision's heads:
    (named maps, boxes [N_i, 4] per image, image sizes) -> [sum N_i, C, output_size, output_size]. On the CPU all
    levels go through ``densevit.ops.roi_align`` in one call (same numbers, faster forward + backward there);
    on other devices through torchvision's kernel, level by level.
    """

    def __init__(self, featmap_names: Sequence[str], strides: Sequence[int], output_size: int,
                 sampling_ratio: int = 0, aligned: bool = True) -> None:
        super().__init__()
        levels = [int(s).bit_length() - 1 for s in strides]
        if len(levels) != len(featmap_names) or any(2**lv != s for lv, s in zip(levels, strides, strict=True)) or (
                levels != list(range(levels[0], levels[0] + len(levels)))):
            raise ValueError(f"PyramidRoIAlign needs one consecutive power-of-two stride per map, got strides "
                             f"{tuple(strides)} for maps {tuple(featmap_names)}")
        self.featmap_names = list(featmap_names)
        self.strides = tuple(int(s) for s in strides)
        self.first_level = levels[0]
        self.output_size = output_size
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, x: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]) -> Tensor:
        """x: maps by name; boxes: per image [N_i, 4] (x1, y1, x2, y2), image pixels -> pooled [sum N_i, C, S, S]."""
        rois = torch.cat([torch.cat([b.new_full((len(b), 1), i), b], dim=1) for i, b in enumerate(boxes)])
        level = fpn_levels(rois[:, 1:], self.first_level, len(self.strides))
        maps = [x[name] for name in self.featmap_names]
        op = multilevel_roi_align if maps[0].device.type == "cpu" else multilevel_roi_align_torchvision
        return op(maps, rois, level, self.output_size, [1.0 / s for s in self.strides], self.sampling_ratio,
                  self.aligned)
