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
echo "ready: .gpu/gen3d.gz ($(du -h .gpu/gen3d.gz | cut -f1))"
