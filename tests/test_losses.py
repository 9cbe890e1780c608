"""corrode.gan.losses: adversarial, cycle and identity losses on known tensors; lambda and lr schedules."""

import math

import pytest
import torch

from corrode.gan.losses import adversarial_loss, cycle_loss, cycle_weight, identity_loss, learning_rate_factor


def test_lsgan_known_values() -> None:
    scores = torch.full((1, 1, 4, 4), 0.5)
    assert adversarial_loss(scores, True).item() == pytest.approx(0.25)
    assert adversarial_loss(torch.full((2, 1, 2, 2), 3.0), False).item() == pytest.approx(9.0)
    assert adversarial_loss(torch.ones(1, 1, 2, 2), True).item() == 0.0


def test_log_loss_known_values() -> None:
    assert adversarial_loss(torch.zeros(1, 1, 2, 2), True, "log").item() == pytest.approx(math.log(2))
    big = torch.full((1, 1, 2, 2), 20.0)
    assert adversarial_loss(big, True, "log").item() < 1e-6
    assert adversarial_loss(big, False, "log").item() == pytest.approx(20.0, rel=1e-4)
    with pytest.raises(ValueError):
        adversarial_loss(big, True, "hinge")


def test_cycle_and_identity_are_l1() -> None:
    a = torch.zeros(1, 3, 2, 2)
    b = torch.full((1, 3, 2, 2), -0.5)
    b[0, 0, 0, 0] = 1.5
    assert cycle_loss(b, a).item() == pytest.approx((11 * 0.5 + 1.5) / 12)
    assert identity_loss(a, a).item() == 0.0


def test_cycle_weight_schedules() -> None:
    assert cycle_weight(50, 101) == 10.0
    assert cycle_weight(0, 101, end=2.0, schedule="linear") == 10.0
    assert cycle_weight(50, 101, end=2.0, schedule="linear") == pytest.approx(6.0)
    assert cycle_weight(100, 101, end=2.0, schedule="cosine") == pytest.approx(2.0)
    assert cycle_weight(50, 101, end=2.0, schedule="cosine") == pytest.approx(6.0)


def test_learning_rate_constant_then_linear_decay() -> None:
    factors = [learning_rate_factor(step, 10, 4) for step in range(10)]
    assert factors[:6] == [1.0] * 6
    assert factors[6:] == pytest.approx([0.8, 0.6, 0.4, 0.2])
    assert learning_rate_factor(9, 10, 0) == 1.0
