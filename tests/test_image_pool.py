"""corrode.gan.image_pool: the CycleGAN history of fakes, and its exact state round trip."""

import torch

from corrode.gan.image_pool import ImagePool


def test_size_zero_passes_through() -> None:
    images = torch.rand(2, 3, 4, 4)
    assert ImagePool(0).query(images) is images


def test_fills_first_then_mixes_old_and_new() -> None:
    pool = ImagePool(3, seed=0)
    first = [torch.full((1, 3, 2, 2), float(i)) for i in range(3)]
    for image in first:
        assert torch.equal(pool.query(image), image)
    returned = [pool.query(torch.full((1, 3, 2, 2), float(10 + i)))[0, 0, 0, 0].item() for i in range(40)]
    old = [value for value in returned if value < 10 or value != returned.index(value) + 10]
    assert any(value < 10 for value in returned) and any(value >= 10 for value in returned)
    assert len(old) > 0 and len(pool.images) == 3


def test_state_round_trip_gives_the_same_draws() -> None:
    pool = ImagePool(4, seed=5)
    for i in range(6):
        pool.query(torch.full((2, 3, 2, 2), float(i)))
    copy = ImagePool(4, seed=99)
    copy.load_state_dict(pool.state_dict())
    for i in range(10):
        batch = torch.full((2, 3, 2, 2), float(100 + i))
        assert torch.equal(pool.query(batch), copy.query(batch))
