import pytest
import torch

from pixelcnn.nn.conv import MaskedConv2d, PointConv, RowSplitConv, VerticalStackConv2d, shift_down


def test_masked_conv_applies_the_mask_functionally():
    conv = MaskedConv2d(2, 4, 3, mask_type="A")
    before = conv.weight.detach().clone()
    x = torch.randn(1, 2, 5, 5, requires_grad=True)
    conv(x).sum().backward()
    # The stored weights are untouched, and masked taps get no gradient.
    assert torch.equal(conv.weight.detach(), before)
    assert conv.weight.grad[conv.mask == 0].abs().sum() == 0
    assert conv.weight.grad[conv.mask == 1].abs().sum() > 0


def test_masked_conv_keeps_size_with_an_off_centre_kernel():
    conv = MaskedConv2d(3, 6, (1, 3), mask_type="B", color_channels=3, center=(0, 2))
    assert conv(torch.randn(2, 3, 4, 7)).shape == (2, 6, 4, 7)


def test_vertical_stack_reads_rows_up_to_its_own_and_shift_down_moves_them_below():
    conv = VerticalStackConv2d(1, 1, 5)
    x = torch.zeros(1, 1, 7, 7, requires_grad=True)
    conv(x)[0, 0, 4, 3].backward()
    read = x.grad[0, 0] != 0
    assert read[2:5, 1:6].all() and read.sum() == 15  # rows 2..4, columns 1..5
    y = torch.arange(12.0).view(1, 1, 3, 4)
    assert torch.equal(shift_down(y)[0, 0], torch.tensor([[0.0] * 4, [0, 1, 2, 3], [4, 5, 6, 7]]))


def test_point_conv_is_the_masked_conv_at_one_pixel_one_group_at_a_time():
    """The cached twin: per colour group, the same outputs as ``forward`` at (i, j), from the rows up to i."""
    for conv in [
        MaskedConv2d(6, 12, 5, mask_type="B", color_channels=3, group_repeats=2).double(),
        MaskedConv2d(3, 6, (1, 3), mask_type="A", color_channels=3, center=(0, 2)).double(),
    ]:
        torch.nn.init.normal_(conv.bias)
        x = torch.randn(2, conv.in_channels, 4, 6, dtype=torch.float64)
        full = conv(x)  # [B, out, H, W]
        point = PointConv(conv)
        left, right, top, _ = conv.padding
        padded = torch.nn.functional.pad(x, (left, right, top, 0))  # no rows below: they are never read
        for i, j in [(0, 0), (2, 3), (3, 5)]:
            window = padded[:, :, i : i + point.rows, j : j + left + right + 1].flatten(1)
            for group, rows in enumerate(point.index):
                assert torch.allclose(point(window, group), full[:, rows, i, j], rtol=0, atol=1e-12)
            # The bias as one more weight row, for a window with a constant one appended: the same outputs.
            with_one = torch.cat([window, torch.ones(2, 1, dtype=window.dtype)], dim=1)
            for group in range(len(point.index)):
                assert torch.allclose(with_one @ point.weight_bias_t[group], point(window, group), rtol=0, atol=1e-12)
        assert sorted(torch.cat(point.index).tolist()) == list(range(conv.out_channels))
        with pytest.raises(AssertionError):  # a window shifted a column is wrong
            assert torch.allclose(
                point(padded[:, :, 2 : 2 + point.rows, 1 : 2 + left + right].flatten(1), 0),
                full[:, point.index[0], 2, 3],
            )


@pytest.mark.parametrize(
    "conv",
    [
        MaskedConv2d(6, 12, 5, mask_type="B", color_channels=3, group_repeats=2),  # blocked (gated) outputs
        MaskedConv2d(3, 8, (1, 3), mask_type="A", color_channels=3, center=(0, 2), group_repeats=2),  # a gated row
        MaskedConv2d(4, 4, 3, mask_type="B", color_channels=1),
    ],
)
def test_row_split_conv_is_rows_above_plus_the_current_rows_taps(conv):
    """The cached twin split at the centre row: ``above`` for a whole row, plus one product per group."""
    conv = conv.double()
    torch.nn.init.normal_(conv.bias)
    x = torch.randn(2, conv.in_channels, 4, 6, dtype=torch.float64)
    full = conv(x)  # [B, out, H, W]
    split = RowSplitConv(conv)
    left, right, top, _ = conv.padding
    padded = torch.nn.functional.pad(x, (left, right, top, 0))
    row_input = torch.nn.functional.pad(x, (left, 0)).permute(0, 2, 3, 1)  # [B, H, left + W, in], channels last
    assert sorted(torch.cat(split.index).tolist()) == list(range(conv.out_channels))
    for i in range(4):
        above = split.above(padded, i)  # [B, W, out]
        for j in range(6):
            window = row_input[:, i, j : j + left + 1].flatten(1)  # [B, (left + 1) * in]
            for group, rows in enumerate(split.index):
                fast = above[:, j, rows] + window @ split.weight_t[group]
                assert torch.allclose(fast, full[:, rows, i, j], rtol=0, atol=1e-12), (i, j, group)
