import pytest
import torch

from pixelcnn.nn.masks import causal_mask, channel_groups


def test_spatial_masks_match_the_docstring_drawing():
    a = causal_mask(5, 1, 1, mask_type="A")[0, 0]
    b = causal_mask(5, 1, 1, mask_type="B")[0, 0]
    expected_a = torch.tensor(
        [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.float
    )
    assert torch.equal(a, expected_a)
    expected_b = expected_a.clone()
    expected_b[2, 2] = 1
    assert torch.equal(b, expected_b)


@pytest.mark.parametrize(
    "mask_type, expected",
    [
        ("A", [[0, 0, 0], [1, 0, 0], [1, 1, 0]]),
        ("B", [[1, 0, 0], [1, 1, 0], [1, 1, 1]]),
    ],
)
def test_rgb_centre_taps(mask_type, expected):
    # Rows: output group R, G, B; columns: input group. G must see R; nothing sees a later group.
    mask = causal_mask(3, 3, 3, mask_type=mask_type, color_channels=3)
    assert torch.equal(mask[:, :, 1, 1], torch.tensor(expected, dtype=torch.float))
    # Off-centre taps ignore colour: every group reads every group at earlier pixels.
    assert mask[:, :, 0, :].eq(1).all() and mask[:, :, 1, 0].eq(1).all()
    assert mask[:, :, 2, :].eq(0).all() and mask[:, :, 1, 2].eq(0).all()


def test_hidden_groups_are_contiguous_blocks():
    assert channel_groups(6, 3).tolist() == [0, 0, 1, 1, 2, 2]
    assert channel_groups(3, 3).tolist() == [0, 1, 2]
    # Logits laid out channel by channel fall in the group of the channel they predict.
    assert channel_groups(3 * 4, 3).tolist() == [0] * 4 + [1] * 4 + [2] * 4
    with pytest.raises(ValueError, match="at least one unit per colour group"):
        channel_groups(2, 3)


def test_group_repeats_groups_each_block_alike():
    # A gated layer's 2p outputs: unit k of the tanh half and of the sigmoid half share a group.
    mask = causal_mask(1, 6, 12, mask_type="B", color_channels=3, group_repeats=2)[:, :, 0, 0]
    assert torch.equal(mask[:6], mask[6:])
    assert torch.equal(mask[:6], causal_mask(1, 6, 6, mask_type="B", color_channels=3)[:, :, 0, 0])


def test_off_centre_kernel_for_the_horizontal_stack():
    # 1 x 3 kernel whose centre is the right-most tap: the two left taps always open.
    mask = causal_mask((1, 3), 3, 3, mask_type="A", color_channels=3, center=(0, 2))
    assert mask[:, :, 0, :2].eq(1).all()
    assert torch.equal(mask[:, :, 0, 2], torch.tensor([[0, 0, 0], [1, 0, 0], [1, 1, 0]], dtype=torch.float))


def test_bad_arguments():
    with pytest.raises(ValueError, match="mask_type"):
        causal_mask(3, 1, 1, mask_type="C")
    with pytest.raises(ValueError, match="outside"):
        causal_mask(3, 1, 1, mask_type="A", center=(3, 0))
