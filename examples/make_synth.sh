#!/usr/bin/env bash
# Make a synthetic car data set and show what is in it.
#
#   examples/make_synth.sh [OUT] [SEED]
#
# OUT defaults to data/synth. Writes OUT/carvana (studio cars + masks, for segmentation), OUT/levels and
# OUT/levels_masks (cars at the four corrosion levels), OUT/manifest.csv and OUT/preview.png.
set -euo pipefail

out="${1:-data/synth}"
seed="${2:-0}"

# The full default set: 300 none / 65 mild / 97 moderate / 73 severe + 20 cars x 8 Carvana views.
# --label-noise 0.05 files 5% of the images under a neighbouring level, as subjective labelling does;
# manifest.csv keeps each image's true level and true rust fraction. The rust is photographic (CC0 rust
# scans, chipped paint, blisters, run-off streaks); --rust-style flat draws the original flat look on
# exactly the same rust pixels, masks and backgrounds.
corrode synth "$out" --seed "$seed" --label-noise 0.05 --overwrite --json > "$out.summary.json"
echo "summary: $(cat "$out.summary.json")"

# A tiny set for quick experiments: 8 images per level at 64 px, no Carvana views.
corrode --quiet synth "$out-tiny" --none 8 --mild 8 --moderate 8 --severe 8 --carvana-cars 0 \
    --size 64 --seed "$seed" --overwrite

echo "images per level folder (given labels):"
for level in none mild moderate severe; do
    printf '  %-9s %s\n' "$level" "$(find "$out/levels/$level" -name '*.png' | wc -l)"
done
echo "relabelled by label noise: $(awk -F, 'NR > 1 && $4 != $5' "$out/manifest.csv" | wc -l)"
echo "look at the cars: $out/preview.png"
