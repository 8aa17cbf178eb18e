"""Block-wise FP8's math (model_plugin.fp8.format): quantize / dequantize round trips within FP8
rounding, ragged edge blocks with their own scale, all-zero blocks, wrong scale shapes refused."""

from __future__ import annotations

import pytest
import torch

from model_plugin.fp8 import FP8_MAX, dequantize_block_fp8, quantize_block_fp8, scale_shape
from tests.model_plugin.fp8.conftest import within_fp8_rounding


@pytest.mark.parametrize("shape", [(128, 128), (256, 512), (200, 300), (64, 130), (1, 1)])
def test_quantize_dequantize_round_trip_stays_within_fp8_rounding(shape: tuple[int, int]) -> None:
    w = torch.randn(shape, generator=torch.Generator().manual_seed(0)) * 0.05
    q, s = quantize_block_fp8(w)
    assert q.dtype == torch.float8_e4m3fn and q.shape == w.shape
    assert s.dtype == torch.float32 and tuple(s.shape) == scale_shape(shape)
    deq = dequantize_block_fp8(q, s)
    assert deq.dtype == torch.float32
    assert within_fp8_rounding(w, deq, s)
    # Not a no-op: FP8 really rounds.
    assert not torch.equal(deq, w) or shape == (1, 1)


def test_ragged_edge_blocks_have_their_own_scale() -> None:
    w = torch.randn(200, 300, generator=torch.Generator().manual_seed(1))
    w[128:, 256:] *= 1000  # the bottom-right ragged block is much larger
    q, s = quantize_block_fp8(w)
    assert s.shape == (2, 3)
    assert s[1, 2] == pytest.approx(float(w[128:, 256:].abs().max()) / FP8_MAX, rel=1e-6)
    assert s[0, 0] == pytest.approx(float(w[:128, :128].abs().max()) / FP8_MAX, rel=1e-6)
    # Each block's largest magnitude lands on FP8's max, nothing saturates.
    assert float(q[128:, 256:].float().abs().max()) == FP8_MAX
    assert float(q[:128, :128].float().abs().max()) == FP8_MAX
    assert within_fp8_rounding(w, dequantize_block_fp8(q, s), s)


def test_all_zero_block_gets_scale_one_and_bf16_output_is_exact() -> None:
    w = torch.zeros(130, 128)
    w[128:] = 1.0
    q, s = quantize_block_fp8(w)
    assert s[0, 0] == 1.0 and torch.count_nonzero(q[:128].float()) == 0
    deq = dequantize_block_fp8(q, s, dtype=torch.bfloat16)
    assert deq.dtype == torch.bfloat16 and torch.equal(deq.float(), w)


def test_dequantize_rejects_a_wrong_scale_shape_and_honours_a_custom_block() -> None:
    q, s = quantize_block_fp8(torch.randn(200, 300))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        dequantize_block_fp8(q, s[:, :2])
    with pytest.raises(ValueError, match="2-D"):
        dequantize_block_fp8(q.reshape(-1), s)
    # A custom block size is honoured.
    q64, s64 = quantize_block_fp8(torch.randn(200, 300), block=(64, 64))
    assert s64.shape == (4, 5)
    assert dequantize_block_fp8(q64, s64, (64, 64)).shape == (200, 300)
