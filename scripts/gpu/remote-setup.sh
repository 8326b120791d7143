#!/usr/bin/env bash
# Run on the CUDA machine (no Swift there): builds libtorchshim.so against that machine's CUDA torch next to the
# carried gen3d binary (which finds it through its $ORIGIN rpath).
#   TORCH_PYTHON  python with the CUDA torch (default python3)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
export TORCH_PYTHON="${TORCH_PYTHON:-python3}"
mkdir -p .gpu/bin
if [ -f .gpu/gen3d.gz ]; then gunzip -c .gpu/gen3d.gz > .gpu/bin/gen3d && chmod +x .gpu/bin/gen3d; fi
# SwiftPM resource bundles (the open_clip BPE merges) sit beside the binary.
for r in .gpu/*.resources; do [ -d "$r" ] && rm -rf ".gpu/bin/$(basename "$r")" && cp -r "$r" .gpu/bin/; done
# Python reference packages carried as wheels (.whl), installed to a private folder.
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
SHIM_OUT="$root/.gpu/bin" SHIM_JOBS="${SHIM_JOBS:-8}" "$root/scripts/build-shim.sh"
missing=$(ldd .gpu/bin/gen3d | grep "not found" || true)
if [ -n "$missing" ]; then echo "gen3d is missing libraries on this machine:"; echo "$missing"; exit 1; fi
.gpu/bin/gen3d info
