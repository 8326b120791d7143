#!/usr/bin/env bash
# Installs the Python packages the fixture oracles in scripts/ import (diffusers, transformers, ...) into
# .deps/oracle-site, on top of the torch of .deps/torch-venv (the CPU wheel whose libtorch the Swift code links).
# Run the oracles with:  PYTHONPATH=.deps/oracle-site .deps/torch-venv/bin/python scripts/<oracle>.py
#
# Every package is pinned and installed with --no-deps: letting pip resolve dependencies into a --target folder
# pulls a second torch (a CUDA wheel, ~5 GiB) that shadows the venv's one, so the references would be computed by
# another torch than the one the tests run against. Idempotent: a folder that already holds these pins is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.deps/torch-venv
TARGET=${ORACLE_SITE:-.deps/oracle-site}
PINS=(
  diffusers==0.42.1 transformers==5.24.0 accelerate==1.16.0 safetensors==0.8.0 pillow==13.0.0
  tokenizers==0.23.3 huggingface_hub==2.5.0 hf_xet==1.8.0 regex==2026.12.2 pyyaml==6.0.4 packaging==26.4
  psutil==7.2.2 tqdm==4.70.1 requests==2.34.2 urllib3==2.8.0 idna==3.21 certifi==2026.10.19.post1
  charset_normalizer==3.5.3 importlib_metadata==10.2.0 zipp==4.1.2 httpx2==2.17.0 httpcore2==2.17.0 h11==0.16.0
  anyio==4.16.0 typer==0.29.3 click==8.5.1 rich==15.0.0 markdown_it_py==4.3.0 mdurl==0.1.2 pygments==2.21.0
  shellingham==1.5.4 annotated_doc==0.0.7 pydantic==2.14.4 pydantic_core==2.50.5 annotated_types==0.8.0
  typing_inspection==0.4.5 truststore==0.10.5 lazy_importer==0.1.0
)
# Packages the venv already provides (torch and its own dependencies) are deliberately not in PINS.

[ -x "$VENV/bin/python" ] || { echo "oracle-env: $VENV missing (run scripts/setup.sh first)" >&2; exit 1; }
missing=()
for pin in "${PINS[@]}"; do
  name=${pin%%==*}; version=${pin##*==}
  compgen -G "$TARGET/${name}-${version}.dist-info" >/dev/null \
    || compgen -G "$TARGET/${name,,}-${version}.dist-info" >/dev/null || missing+=("$pin")
done
if [ ${#missing[@]} -gt 0 ]; then
  "$VENV/bin/pip" install --no-deps --upgrade --target "$TARGET" "${missing[@]}"
fi
for shadow in torch functorch torchgen triton nvidia numpy; do
  if [ -e "$TARGET/$shadow" ]; then
    echo "oracle-env: $TARGET/$shadow shadows the venv's package; remove it (an earlier install with dependencies)" >&2
    exit 1
  fi
done
PYTHONPATH=$TARGET "$VENV/bin/python" -c \
  'import torch, diffusers, transformers; print("oracle env: torch", torch.__version__, "diffusers", diffusers.__version__, "transformers", transformers.__version__)'
