"""corrode.datasets: layouts, missing masks, size mismatches, resizing that keeps masks binary."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from corrode import datasets
from corrode.datasets import DatasetError
from corrode.errors import FileError


def _pair(root: Path, image_dir: str, mask_dir: str, stem: str, mask_name: str, size=(32, 24)) -> None:
    (root / image_dir).mkdir(parents=True, exist_ok=True)
    (root / mask_dir).mkdir(parents=True, exist_ok=True)
    width, height = size
    Image.new("RGB", (width, height), (200, 30, 30)).save(root / image_dir / f"{stem}.jpg")
    mask = np.zeros((height, width), np.uint8)
    mask[4:-4, 6:-6] = 255
    Image.fromarray(mask).save(root / mask_dir / mask_name)


def test_carvana_layout(tmp_path: Path) -> None:
    for stem in ("car1_01", "car1_02"):
        _pair(tmp_path, "train", "train_masks", stem, f"{stem}_mask.gif")
    pairs = datasets.find_pairs(tmp_path)
    assert [p.stem for p in pairs] == ["car1_01", "car1_02"]
    assert pairs[0].mask.name == "car1_01_mask.gif"


def test_own_layout_and_dataset_items(tmp_path: Path) -> None:
    _pair(tmp_path, "images", "masks", "a", "a.png", size=(50, 30))
    dataset = datasets.PairDataset(datasets.find_pairs(tmp_path), size=16)
    image, mask = dataset[0]
    assert tuple(image.shape) == (3, 16, 16) and tuple(mask.shape) == (1, 16, 16)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0


def test_missing_mask_names_the_image(tmp_path: Path) -> None:
    _pair(tmp_path, "train", "train_masks", "x", "x_mask.gif")
    Image.new("RGB", (8, 8)).save(tmp_path / "train" / "lonely.jpg")
    with pytest.raises(DatasetError, match="lonely.jpg: no mask"):
        datasets.find_pairs(tmp_path)


def test_wrong_layout_and_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="expected train/"):
        datasets.find_pairs(tmp_path)
    with pytest.raises(DatasetError, match="no such folder"):
        datasets.find_pairs(tmp_path / "nope")
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetError, match="no masks/"):
        datasets.find_pairs(tmp_path)


def test_mask_size_mismatch_is_named(tmp_path: Path) -> None:
    _pair(tmp_path, "images", "masks", "a", "a.png")
    Image.new("L", (10, 10)).save(tmp_path / "masks" / "a.png")
    dataset = datasets.PairDataset(datasets.find_pairs(tmp_path), size=16)
    with pytest.raises(FileError, match="a.png: mask is 10x10 but its image a.jpg is 32x24"):
        dataset[0]


def test_level_folders(tmp_path: Path) -> None:
    for name in ("none", "mild", "moderate", "severe"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / name / f"{name}1.png")
    found = datasets.find_levels(tmp_path)
    assert list(found) == ["none", "mild", "moderate", "severe"]
    (tmp_path / "severe" / "severe1.png").unlink()
    with pytest.raises(DatasetError, match="severe: level folder holds no images"):
        datasets.find_levels(tmp_path)
    assert "severe" in datasets.find_levels(tmp_path, required=("none",))


def test_image_list_dataset_applies_masks(tmp_path: Path) -> None:
    (tmp_path / "levels" / "mild").mkdir(parents=True)
    (tmp_path / "masks" / "mild").mkdir(parents=True)
    Image.new("RGB", (8, 8), (255, 255, 255)).save(tmp_path / "levels" / "mild" / "c.png")
    mask = np.zeros((8, 8), np.uint8)
    mask[:, :4] = 255
    Image.fromarray(mask).save(tmp_path / "masks" / "mild" / "c.png")
    dataset = datasets.ImageListDataset(
        [tmp_path / "levels" / "mild" / "c.png"], size=8, masks_root=tmp_path / "masks"
    )
    item = dataset[0]
    assert float(item[:, :, :4].min()) == 1.0 and float(item[:, :, 4:].max()) == 0.0


def test_resize_pair_keeps_mask_binary() -> None:
    image = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    mask = np.zeros((37, 53), bool)
    mask[10:30, 5:40] = True
    small, small_mask = datasets.resize_pair(image, mask, 16)
    assert small.shape == (16, 16, 3) and small_mask is not None and small_mask.dtype == bool
