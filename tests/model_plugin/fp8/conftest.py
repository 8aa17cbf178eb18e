"""What "within FP8 rounding" means for a block-FP8 weight, shared by the format and twin tests."""

import torch

from model_plugin.fp8 import BLOCK_SIZE

E4M3_REL = 2.0**-4  # 3 mantissa bits: round-to-nearest error <= half a step of 2^-3
E4M3_SUBNORMAL_STEP = 2.0**-9


def within_fp8_rounding(w: torch.Tensor, deq: torch.Tensor, scale_inv: torch.Tensor) -> bool:
    rows, cols = w.shape
    scale = scale_inv.repeat_interleave(BLOCK_SIZE[0], 0).repeat_interleave(BLOCK_SIZE[1], 1)[:rows, :cols]
    bound = E4M3_REL * w.abs() + 0.5 * E4M3_SUBNORMAL_STEP * scale + 1e-12
    return bool(((deq - w).abs() <= bound).all())
