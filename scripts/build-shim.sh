#!/usr/bin/env bash
# Builds libtorchshim.so (Sources/CTorchShim/cxx/*.cpp, plus cuda/*.cu where nvcc and CUDA libtorch exist)
# against an installed libtorch.
#   TORCH_PYTHON  python whose `import torch` gives the libtorch to build against
#                 (default: .deps/torch-venv/bin/python, else python3)
#   SHIM_OUT      output folder for libtorchshim.so (default: .deps/lib)
#   SHIM_JOBS     parallel compiles (default: nproc)
#   SHIM_NVCC     nvcc to use (default: nvcc on PATH, $CUDA_HOME/bin, /usr/local/cuda/bin, then the nvidia-cuda-nvcc
#                 wheel next to torch); without one a CUDA build still links, and the kernels report themselves missing
#   SHIM_CUDA_ARCH  nvcc -gencode flags (default: sm_89, sm_90, PTX for newer)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
py="${TORCH_PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x "$root/.deps/torch-venv/bin/python" ]; then py="$root/.deps/torch-venv/bin/python"; else py=python3; fi
fi
read -r T ABI < <("$py" -c 'import torch,os; print(os.path.dirname(torch.__file__), int(torch.compiled_with_cxx11_abi()))')
out="${SHIM_OUT:-$root/.deps/lib}"
obj="$out/obj"
mkdir -p "$out" "$obj"
src="$root/Sources/CTorchShim"
flags=(-O2 -fPIC -std=c++17 -D_GLIBCXX_USE_CXX11_ABI="$ABI" -w
       -I"$T/include" -I"$T/include/torch/csrc/api/include" -I"$src/include")
libs=(-L"$T/lib" -Wl,-rpath,"$T/lib" -Wl,--no-as-needed -ltorch -ltorch_cpu -lc10)
cuda=0
if [ -f "$T/lib/libtorch_cuda.so" ]; then
  cuda=1
  flags+=(-DSHIM_WITH_CUDA)
  libs+=(-ltorch_cuda -lc10_cuda)
  cuda_home="${CUDA_HOME:-$(dirname "$(dirname "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)")")}"
  flags+=(-I"$cuda_home/include")
  # nvidia pip wheels (cu13) keep headers under site-packages/nvidia/*/include
  for inc in "$T"/../nvidia/*/include "$T"/../nvidia/cu*/include; do [ -d "$inc" ] && flags+=(-I"$inc"); done
fi
# The CUDA kernels (cuda/*.cu) need nvcc; cxx/render.cpp calls them only when they are compiled (SHIM_CUDA_KERNELS).
nvcc_bin=""
kernels=0
if [ "$cuda" = 1 ]; then
  for cand in "${SHIM_NVCC:-}" "$(command -v nvcc || true)" "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" \
              /usr/local/cuda/bin/nvcc "$T"/../nvidia/cu*/bin/nvcc "$T"/../nvidia/cuda_nvcc/bin/nvcc; do
    if [ -n "$cand" ] && [ -x "$cand" ]; then nvcc_bin="$cand"; break; fi
  done
  if [ -n "$nvcc_bin" ] && compgen -G "$src/cuda/*.cu" >/dev/null; then
    kernels=1
    flags+=(-DSHIM_CUDA_KERNELS)
    # The kernels' objects need the CUDA runtime: link the libcudart that libtorch_cuda itself loads.
    cudart="$(ldd "$T/lib/libtorch_cuda.so" 2>/dev/null | awk '/libcudart/ {print $3; exit}')"
    if [ -n "$cudart" ] && [ -f "$cudart" ]; then
      libs+=("$cudart" -Wl,-rpath,"$(dirname "$cudart")")
    else
      libs+=(-L"$(dirname "$(dirname "$nvcc_bin")")/lib64" -lcudart)
    fi
  else
    echo "build-shim: no nvcc found: the CUDA rasterizer kernels are left out (set SHIM_NVCC to add them)" >&2
  fi
fi
arch="${SHIM_CUDA_ARCH:--gencode arch=compute_89,code=sm_89 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90}"
# Objects built with other flags (CPU vs CUDA torch, kernels or not) are stale.
signature="$T ${flags[*]} kernels=$kernels $arch"
if [ "$(cat "$obj/.signature" 2>/dev/null)" != "$signature" ]; then
  rm -f "$obj"/*.o
  printf '%s' "$signature" > "$obj/.signature"
fi
# stale OBJECT SOURCE: the object is missing or older than its source or any shim header.
stale() {
  [ ! -f "$1" ] && return 0
  [ "$2" -nt "$1" ] && return 0
  local h
  for h in "$src"/include/*.h "$src"/cxx/*.h "$src"/cuda/*.h; do [ -f "$h" ] && [ "$h" -nt "$1" ] && return 0; done
  return 1
}
objs=()
pids=()
jobs="${SHIM_JOBS:-$(nproc)}"
for f in "$src"/cxx/*.cpp; do
  o="$obj/$(basename "${f%.cpp}").o"
  objs+=("$o")
  if stale "$o" "$f"; then
    echo "compiling $(basename "$f")" >&2
    g++ "${flags[@]}" -c "$f" -o "$o" &
    pids+=($!)
    if [ "${#pids[@]}" -ge "$jobs" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  fi
done
for p in "${pids[@]}"; do wait "$p"; done
if [ "$kernels" = 1 ]; then
  # nvcc runs one at a time: each compile of the ATen headers takes ~1 GB.
  for f in "$src"/cuda/*.cu; do
    o="$obj/$(basename "${f%.cu}").cu.o"
    objs+=("$o")
    if stale "$o" "$f"; then
      echo "compiling $(basename "$f") with $nvcc_bin" >&2
      # shellcheck disable=SC2086
      "$nvcc_bin" -O3 -std=c++17 --use_fast_math $arch -Xcompiler -fPIC -D_GLIBCXX_USE_CXX11_ABI="$ABI" \
        -DSHIM_WITH_CUDA -DSHIM_CUDA_KERNELS -diag-suppress 3306 \
        -I"$T/include" -I"$T/include/torch/csrc/api/include" -I"$src/include" -c "$f" -o "$o"
    fi
  done
fi
g++ -shared -o "$out/libtorchshim.so" "${objs[@]}" "${libs[@]}"
echo "built $out/libtorchshim.so (torch at $T, cuda=$cuda, kernels=$kernels)" >&2
