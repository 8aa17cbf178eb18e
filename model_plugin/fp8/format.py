"""Block-wise FP8 (float8_e4m3fn, one float32 scale per 128x128 block), as AntAngelMed-FP8 ships.

``weight ~= fp8_weight * weight_scale_inv`` with the scale broadcast over its block; edge blocks
of shapes that are not multiples of the block are ragged (scale shape is ceil-divided).
The plugin imports ``dequantize_block_fp8`` for its dequantize-at-load fallback on CPUs.
"""

from __future__ import annotations

import torch

from .weights import is_quantizable_linear

FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = float(torch.finfo(FP8_DTYPE).max)  # 448
DEFAULT_BLOCK: tuple[int, int] = (128, 128)
FP8_QUANTIZATION_CONFIG = {
    "quant_method": "fp8",
    "activation_scheme": "dynamic",
    "weight_block_size": list(DEFAULT_BLOCK),
    "fmt": "e4m3",
}
SCALE_SUFFIX = "_scale_inv"  # "x.weight" -> "x.weight_scale_inv"


def scale_shape(shape: tuple[int, ...], block: tuple[int, int] = DEFAULT_BLOCK) -> tuple[int, int]:
    """Shape of weight_scale_inv for a 2-D weight: one entry per (possibly ragged) block."""
    rows, cols = shape
    return -(-rows // block[0]), -(-cols // block[1])


def _expand_scales(scale_inv: torch.Tensor, shape: tuple[int, int],
                   block: tuple[int, int]) -> torch.Tensor:
    """Broadcast [ceil(R/br), ceil(C/bc)] scales to the weight's [R, C], cropping edge blocks."""
    rows, cols = shape
    full = scale_inv.float().repeat_interleave(block[0], dim=0).repeat_interleave(block[1], dim=1)
    return full[:rows, :cols]


def quantize_block_fp8(weight: torch.Tensor, block: tuple[int, int] = DEFAULT_BLOCK
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize a 2-D weight: returns (float8_e4m3fn weight, float32 scale_inv per block).

    Each block's absolute max maps to FP8's max (448), so no value saturates.
    """
    if weight.dim() != 2:
        raise ValueError(f"block FP8 needs a 2-D weight, got shape {tuple(weight.shape)}")
    rows, cols = weight.shape
    sr, sc = scale_shape((rows, cols), block)
    w32 = weight.float()
    padded = torch.zeros(sr * block[0], sc * block[1], dtype=torch.float32)
    padded[:rows, :cols] = w32
    amax = padded.view(sr, block[0], sc, block[1]).abs().amax(dim=(1, 3))  # [sr, sc]
    # An all-zero block gets scale 1 (any scale would do; avoid 0/0).
    scale_inv = torch.where(amax > 0, amax / FP8_MAX, torch.ones_like(amax))
    scaled = w32 / _expand_scales(scale_inv, (rows, cols), block)
    q = scaled.clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE)
    return q.contiguous(), scale_inv.contiguous()


def dequantize_block_fp8(weight: torch.Tensor, scale_inv: torch.Tensor,
                         block: tuple[int, int] = DEFAULT_BLOCK, *,
                         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """fp8 weight [R, C] * scale_inv [ceil(R/br), ceil(C/bc)] broadcast per block -> dtype."""
    if weight.dim() != 2:
        raise ValueError(f"block FP8 needs a 2-D weight, got shape {tuple(weight.shape)}")
    rows, cols = weight.shape
    block = (int(block[0]), int(block[1]))
    expected = scale_shape((rows, cols), block)
    if tuple(scale_inv.shape) != expected:
        raise ValueError(
            f"weight_scale_inv shape {tuple(scale_inv.shape)} does not match weight "
            f"{(rows, cols)} with block {block} (expected {expected})"
        )
    return (weight.float() * _expand_scales(scale_inv, (rows, cols), block)).to(dtype)


def quantize_for_checkpoint(name: str, tensor: torch.Tensor) -> dict[str, torch.Tensor]:
    """Writer hook: linear projections become fp8 + scale; everything else is kept as is."""
    if not is_quantizable_linear(name):
        return {name: tensor}
    q, scale_inv = quantize_block_fp8(tensor)
    return {name: q, name + SCALE_SUFFIX: scale_inv}
