#!/usr/bin/env bash
# Train the small demo models shipped in corrode/assets/demo/ with the project's own commands:
#   bash examples/make_demo_weights.sh [WORK_DIR]
# They are trained on synthetic cars only (corrode synth), at 64 px, on the CPU, with fixed seeds.
# Writes corrode/assets/demo/seg.safetensors and gan.safetensors (the GAN's weights stored as fp16 to
# stay under 5 MB; they load into the fp32 model unchanged). Takes about 20 minutes on 2 idle CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
assets=corrode/assets/demo
mkdir -p "$assets"

# The level images are the paper's counts (300 clean, 65 / 97 / 73 rusty), photographic rust; the
# Carvana-style studio pairs are for the segmenter only.
corrode synth "$work/synth" --size 64 --carvana-cars 20 --carvana-views 8 --seed 0 --overwrite
# The segmenter learns from the studio (Carvana-style) pairs and from the level images with their drawn
# masks, so that it also knows cars on grass, gravel and asphalt (photos are rarely taken in a studio).
pairs="$work/seg_pairs"
mkdir -p "$pairs/images" "$pairs/masks"
for image in "$work/synth/carvana/train/"*; do
  ln -sf "$image" "$pairs/images/$(basename "$image")"
done
for mask in "$work/synth/carvana/train_masks/"*; do
  name=$(basename "$mask")
  ln -sf "$mask" "$pairs/masks/${name/_mask/}"
done
for level in none mild moderate severe; do
  for image in "$work/synth/levels/$level/"*; do
    name=$(basename "$image")
    ln -sf "$image" "$pairs/images/${level}_$name"
    ln -sf "$work/synth/levels_masks/$level/$name" "$pairs/masks/${level}_$name"
  done
done
corrode train-seg "$pairs" --out "$work/seg" --size 64 --epochs 10 --batch-size 16 --lr 3e-3 \
  --width 0.5 --decoder-channels 64,32,16,16 --encoder-weights none --seed 0 --device cpu
corrode optimize-masks "$work/synth/levels" --out "$work/masked" --seg "$work/seg" --device cpu
# The recommended preset at the 64 px study's widths (16 channels, 4 blocks, 32-channel
# discriminators), batch 1: 8 epochs of 300 steps, the last 2 decaying the learning rate.
corrode train-gan "$work/masked" --out "$work/gan" --preset recommended --size 64 --batch-size 1 \
  --epochs 8 --decay-epochs 2 --base-channels 16 --residual-blocks 4 --discriminator-channels 32 \
  --checkpoint-every 0 --seed 0 --device cpu

python - "$work" "$assets" <<'PY'
import sys
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file

from corrode.locate import find_model

work, assets = Path(sys.argv[1]), Path(sys.argv[2])
for kind, half in (("seg", False), ("gan", True)):
    source = find_model(work / kind, kind)
    with safe_open(str(source), framework="pt") as handle:
        metadata = handle.metadata()
        state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    if half:
        state = {key: value.half() if value.is_floating_point() else value for key, value in state.items()}
    metadata = {**metadata, "note": "demo model: trained on synthetic cars (examples/make_demo_weights.sh)"}
    target = assets / f"{kind}.safetensors"
    save_file(state, str(target), metadata=metadata)
    target.chmod(0o644)
    print(f"{target}: {target.stat().st_size / 1e6:.2f} MB from {source}")
PY
