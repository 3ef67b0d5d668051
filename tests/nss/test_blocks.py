import pytest
import torch

from slkd_basicsr.nss.blocks import block_sums, to_blocks


def test_to_blocks_is_a_non_overlapping_partition():
    x = torch.arange(2 * 8 * 12, dtype=torch.float32).reshape(1, 2, 8, 12)
    blocks = to_blocks(x, 4)
    assert blocks.shape == (1, 2, 2, 3, 4, 4)
    assert torch.equal(blocks[0, 1, 1, 2], x[0, 1, 4:8, 8:12])
    with pytest.raises(ValueError, match='multiple of the block size'):
        to_blocks(x, 5)


@pytest.mark.parametrize('n, segment', [(4, 3), (6, 2), (16, 6)])
def test_block_sums_and_their_backward(n, segment):
    x = torch.randn(1, 2, 2 * n, 3 * n, dtype=torch.float64, requires_grad=True)
    columns, runs = block_sums(x, n, segment)
    blocks = to_blocks(x, n)
    torch.testing.assert_close(columns, blocks.sum(-2))
    edges = torch.stack([blocks[..., 0, :], blocks[..., :, -1], blocks[..., -1, :], blocks[..., :, 0]], dim=-2)
    torch.testing.assert_close(runs, edges.unfold(-1, segment, 1).sum(-1))
    assert torch.autograd.gradcheck(lambda t: block_sums(t, n, segment), (x, ))
