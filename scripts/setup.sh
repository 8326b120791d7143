#!/usr/bin/env bash
# One-time (idempotent) set-up: system libraries, libtorch in a project venv, and libtorchshim.so.
#   TORCH_PYTHON=/path/to/python   use that interpreter's torch (e.g. an existing CUDA install) instead of the venv
#   TORCH_SPEC=torch==2.13.0       what pip installs into the venv (default: the CPU wheel)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

need=()
for pkg in libpng-dev libjpeg62-turbo-dev libcurl4-openssl-dev zlib1g-dev pkg-config python3-venv; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${need[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: missing system packages: ${need[*]} (run: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
fi

if [ -z "${TORCH_PYTHON:-}" ]; then
  venv="$root/.deps/torch-venv"
  spec="${TORCH_SPEC:-torch==2.13.0}"
  if ! "$venv/bin/python" -c 'import torch' >/dev/null 2>&1; then
    echo "setup: installing $spec into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "$spec" numpy
  fi
  export TORCH_PYTHON="$venv/bin/python"
fi
"$root/scripts/build-shim.sh"
