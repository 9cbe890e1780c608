"""corrode.gan.diffaugment: shapes, gradients, black fill, policy parsing."""

import pytest
import torch

from corrode.gan.diffaugment import color, cutout, diff_augment, parse_policy, translation


def test_policy_parsing() -> None:
    assert parse_policy("color, translation,cutout") == ("color", "translation", "cutout")
    assert parse_policy("") == ()
    with pytest.raises(ValueError, match="rotate"):
        parse_policy("color,rotate")


def test_all_policies_keep_shape_and_pass_gradients() -> None:
    torch.manual_seed(0)
    x = (torch.rand(3, 3, 16, 16) * 2 - 1).requires_grad_(True)
    out = diff_augment(x, parse_policy("color,translation,cutout"))
    assert out.shape == x.shape
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_translation_shifts_and_fills_black() -> None:
    torch.manual_seed(1)
    x = torch.ones(8, 3, 16, 16)
    out = translation(x, ratio=0.25)
    assert set(out.unique().tolist()) <= {-1.0, 1.0}
    shifted = [(o == -1).any().item() for o in out]
    assert any(shifted)
    for o in out:  # one shifted copy of the all-ones square: the white area is a rectangle
        rows, cols = (o[0] == 1).any(1).sum().item(), (o[0] == 1).any(0).sum().item()
        assert (o[0] == 1).sum().item() == rows * cols


def test_cutout_blanks_a_square_of_the_given_ratio() -> None:
    torch.manual_seed(2)
    x = torch.ones(16, 3, 16, 16)
    out = cutout(x, ratio=0.5)
    blank = (out[:, 0] == -1).float().flatten(1).sum(1)
    assert blank.max().item() == 64 and blank.min().item() > 0


def test_color_changes_values_but_not_structure() -> None:
    torch.manual_seed(3)
    x = torch.rand(4, 3, 8, 8) * 2 - 1
    out = color(x)
    assert not torch.allclose(out, x)
    assert torch.isfinite(out).all()
