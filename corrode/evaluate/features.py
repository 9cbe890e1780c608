"""The feature spaces of FID and KID: the classifier's penultimate layer, or Inception-v3."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from corrode.errors import UsageError
from corrode.evaluate.config import EvaluateConfig

if TYPE_CHECKING:
    import torch

    from corrode.classification import Classifier


def feature_space(cfg: EvaluateConfig, classifier: Classifier | None) -> tuple[Any, str]:
    """(nn.Module for torchmetrics, description) or (None, reason)."""
    if cfg.features == "inception":
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3  # noqa: F401
        except ImportError as exc:
            raise UsageError(
                "--features inception needs torch-fidelity (pip install torch-fidelity)"
            ) from exc
        if cfg.inception_weights is None or not Path(cfg.inception_weights).is_file():
            raise UsageError(
                "--features inception needs --inception-weights FILE (pt_inception-2015-12-05-6726825d.pth); "
                "nothing is downloaded"
            )
        module = _inception_module(Path(cfg.inception_weights))
        return module, f"Inception-v3 pool3 (2048-d, torch-fidelity, weights {cfg.inception_weights})"
    if classifier is None:
        return None, "none (no classifier: FID and KID not measured)"
    where = f" of {classifier.path}" if classifier.path else ""
    description = (
        f"classifier penultimate layer ({classifier.num_features}-d pooled MobileNetV2 features{where}, "
        f"images resized to {classifier.image_size} px); not comparable with Inception FIDs"
    )
    return classifier.feature_module(), description


def features_of(feature: Any, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """`(N, F)` features of `(N, 3, S, S)` images, computed once per set for both FID and KID."""
    import torch

    with torch.inference_mode():
        parts = [
            feature(images[start : start + batch_size]).float().cpu()
            for start in range(0, len(images), batch_size)
        ]
    return torch.cat(parts) if parts else torch.zeros(0, feature.num_features)


def _inception_module(weights: Path) -> Any:
    from torchmetrics.image.fid import NoTrainInceptionV3

    from corrode.metrics import feature_module

    network = NoTrainInceptionV3(
        name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=str(weights)
    )

    def extract(images: torch.Tensor) -> torch.Tensor:
        return network((images.clamp(0, 1) * 255).byte())

    return feature_module(extract, 2048)
