#!/usr/bin/env bash
# Builds libtorchshim.so (Sources/CTorchShim/cxx/*.cpp, plus cuda/*.cu where nvcc and CUDA libtorch exist)
# against an installed libtorch.
#   TORCH_PYTHON  python whose `import torch` gives the libtorch to build against
#                 (default: .deps/torch-venv/bin/python, else python3)
#   SHIM_OUT      output folder for libtorchshim.so (default: .deps/lib)
#   SHIM_JOBS     parallel compiles (default: nproc)
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
objs=()
pids=()
jobs="${SHIM_JOBS:-$(nproc)}"
for f in "$src"/cxx/*.cpp; do
  o="$obj/$(basename "${f%.cpp}").o"
  objs+=("$o")
  if [ ! -f "$o" ] || [ "$f" -nt "$o" ] || [ "$src/include/torch_shim.h" -nt "$o" ] || [ "$src/cxx/shim_internal.h" -nt "$o" ]; then
    echo "compiling $(basename "$f")" >&2
    g++ "${flags[@]}" -c "$f" -o "$o" &
    pids+=($!)
    if [ "${#pids[@]}" -ge "$jobs" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  fi
done
for p in "${pids[@]}"; do wait "$p"; done
if [ "$cuda" = 1 ] && command -v nvcc >/dev/null && compgen -G "$src/cuda/*.cu" >/dev/null; then
  arch="${SHIM_CUDA_ARCH:--gencode arch=compute_89,code=sm_89 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90}"
  for f in "$src"/cuda/*.cu; do
    o="$obj/$(basename "${f%.cu}").cu.o"
    objs+=("$o")
    if [ ! -f "$o" ] || [ "$f" -nt "$o" ]; then
      echo "compiling $(basename "$f") with nvcc" >&2
      nvcc -O3 -std=c++17 --use_fast_math $arch -Xcompiler -fPIC -D_GLIBCXX_USE_CXX11_ABI="$ABI" -DSHIM_WITH_CUDA \
        -I"$T/include" -I"$T/include/torch/csrc/api/include" -I"$src/include" -c "$f" -o "$o"
    fi
  done
elif [ "$cuda" = 0 ] && compgen -G "$src/cuda/*.cpu.cpp" >/dev/null; then
  :
fi
g++ -shared -o "$out/libtorchshim.so" "${objs[@]}" "${libs[@]}"
echo "built $out/libtorchshim.so (torch at $T, cuda=$cuda)" >&2
