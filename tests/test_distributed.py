"""corrode.distributed: single-process context and sharding by index."""

import torch

from corrode import distributed
from corrode.distributed import DistContext


def test_single_process_context(monkeypatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    context = distributed.setup("cpu")
    assert context.is_main and not context.enabled and context.device.type == "cpu"


def test_shards_cover_everything_once() -> None:
    items = list(range(11))
    shards = [distributed.shard(items, DistContext(r, 3, r, torch.device("cpu"))) for r in range(3)]
    assert sorted(sum(shards, [])) == items
    assert shards[0] == [0, 3, 6, 9]
