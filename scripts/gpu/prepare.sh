#!/usr/bin/env bash
# Run HERE (the Swift build machine): builds the static gen3d binary into .gpu/bin for a CUDA machine.
# Then, on the CUDA machine, in the repo root with .gpu carried along: scripts/gpu/remote-setup.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
swift build -c release --static-swift-stdlib --product gen3d
mkdir -p .gpu/bin
cp .build/release/gen3d .gpu/bin/
echo "ready: .gpu/bin/gen3d ($(du -h .gpu/bin/gen3d | cut -f1))"
