#!/usr/bin/env bash
# Run HERE (the Swift build machine): builds the static gen3d binary into .gpu/bin for a CUDA machine.
# Then, on the CUDA machine, in the repo root with .gpu carried along: scripts/gpu/remote-setup.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
swift build -c release --static-swift-stdlib --product gen3d --scratch-path .build-release
# The static binary (Foundation + ICU data) is ~60 MB stripped; the device tool carries at most 64 MiB, so ship it gzipped.
rm -rf .gpu/bin && mkdir -p .gpu
strip -o .gpu/gen3d .build-release/release/gen3d
rm -rf .gpu/Splat3D_Tokenizers.resources && cp -r .build-release/release/Splat3D_Tokenizers.resources .gpu/
gzip -f -9 .gpu/gen3d
# The full-size manifests (keys and shapes) the random-weight timing mode builds from, and the validator sample PLY.
shared="$root/../shared/fixtures"
if [ -d "$shared" ]; then
  mkdir -p .gpu/manifests .gpu/ply
  cp "$shared"/trellis/manifest_*.json "$shared"/birefnet/manifest_BiRefNet_general.json "$shared"/lgm/manifest_*.json .gpu/manifests/
  cp "$shared"/ply/hamburger.ply .gpu/ply/
fi
echo "ready: .gpu/gen3d.gz ($(du -h .gpu/gen3d.gz | cut -f1))"
