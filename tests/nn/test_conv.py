import torch

from pixelcnn.nn.conv import MaskedConv2d, VerticalStackConv2d, shift_down


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
    assert read[2:5, 1:6].all() and read.sum() == 15          # rows 2..4, columns 1..5
    y = torch.arange(12.0).view(1, 1, 3, 4)
    assert torch.equal(shift_down(y)[0, 0], torch.tensor([[0.0] * 4, [0, 1, 2, 3], [4, 5, 6, 7]]))
