"""ImageNet MobileNetV2 encoder weights for the segmenter and the classifier: from torchvision's cache,
a file (.safetensors or a .pth read with weights_only), or a download when asked; random init otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from corrode.errors import ConfigError, CorrodeError, FileError

if TYPE_CHECKING:
    import torch
    from torch import nn


class EncoderWeightsError(CorrodeError):
    """ImageNet encoder weights were asked for and could not be had."""


def imagenet_weights_path() -> Path:
    """Where torchvision keeps (and looks for) the ImageNet MobileNetV2 weights file."""
    import torch
    from torchvision.models import MobileNet_V2_Weights

    name = MobileNet_V2_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def read_state_file(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors file or a .pth read with weights_only (never a full unpickle)."""
    import torch

    if not path.is_file():
        raise FileError(path, "no such weights file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt files surface as many exception types
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise FileError(path, f"not a readable state-dict file ({first})") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FileError(path, "does not hold a state dict of tensors")
    return state


def apply_encoder_state(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Load MobileNetV2 encoder weights keyed as torchvision's (`features.`), ours (`encoder.`) or bare."""
    wanted = model.encoder.state_dict()
    for prefix in ("features.", "encoder.", ""):
        chosen = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
        if all(key in chosen for key in wanted):
            break
    else:
        raise FileError(path, "holds no MobileNetV2 encoder weights (expected keys like features.0.0.weight)")
    for key, tensor in wanted.items():
        if chosen[key].shape != tensor.shape:
            raise FileError(
                path,
                f"encoder weights do not fit width {model.config.width}: {key} is "
                f"{tuple(chosen[key].shape)}, the model needs {tuple(tensor.shape)}",
            )
    model.encoder.load_state_dict({key: chosen[key] for key in wanted}, strict=True)


def load_encoder_weights(model: nn.Module, source: str) -> str:
    """Initialise `model`'s encoder from `source` (see TrainSegConfig); returns one line saying how."""
    if source == "none":
        return "encoder: random initialisation (--encoder-weights none)"
    if source in ("auto", "imagenet"):
        if model.config.width != 1.0:
            if source == "imagenet":
                raise ConfigError(
                    f"ImageNet MobileNetV2 weights exist only for width 1.0, not {model.config.width}"
                )
            return (
                "encoder: random initialisation "
                f"(ImageNet weights exist only for width 1.0, not {model.config.width})"
            )
        path = imagenet_weights_path()
        if not path.is_file():
            if source == "auto":
                return (
                    f"encoder: random initialisation (no ImageNet weights at {path}; "
                    "--encoder-weights imagenet downloads them)"
                )
            _download_imagenet(path)
    else:
        path = Path(source).expanduser()
    apply_encoder_state(model, read_state_file(path), path)
    return (
        f"encoder: ImageNet MobileNetV2 weights from {path}"
        if source in ("auto", "imagenet")
        else (f"encoder: weights from {path}")
    )


def _download_imagenet(path: Path) -> None:
    from torchvision.models import MobileNet_V2_Weights

    url = MobileNet_V2_Weights.IMAGENET1K_V1.url
    try:
        MobileNet_V2_Weights.IMAGENET1K_V1.get_state_dict(progress=True, check_hash=True)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError; a bad hash is a RuntimeError
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise EncoderWeightsError(
            f"could not download the ImageNet MobileNetV2 weights ({reason}): fetch {url} elsewhere and "
            f"place it as {path} (torch.hub cache; TORCH_HOME moves it), or pass --encoder-weights FILE "
            "or --encoder-weights none"
        ) from exc
