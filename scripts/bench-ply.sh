#!/usr/bin/env bash
# Times PLYWriter on 500K random Gaussians (median of several runs) in release mode.
# Needs the `bench-ply` subcommand of gen3d, which calls PLYBenchmark.run(gaussians:).
set -euo pipefail
cd "$(dirname "$0")/.."
exec swift run -c release gen3d bench-ply "$@"
