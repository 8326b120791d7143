#!/usr/bin/env bash
# On the CUDA machine after remote-setup.sh: runs the named benchmark groups, each next to its PyTorch reference in
# the same run, logging to $OUT (or ./bench-out). Groups: matmul trellis flux birefnet smoke render scorers pipeline memplan lgm layouts bench daemon ply
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
out="${OUT:-$root/bench-out}"
mkdir -p "$out"
export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
g=.gpu/bin/gen3d
for group in "$@"; do
  case "$group" in
    matmul)
      $g microbench matmul --n 8192 --iterations 30
      python3 scripts/bench/torch_matmul.py --n 8192 --iterations 30 ;;
    trellis)
      $g microbench trellis --manifests .gpu/manifests --dtype float16 --voxels 20000
      python3 scripts/bench/transformers_dinov2.py ;;
    flux)
      $g microbench flux --dtype bfloat16
      python3 scripts/bench/diffusers_flux.py ;;
    birefnet)
      $g microbench birefnet --dtype float16 --manifest .gpu/manifests/manifest_BiRefNet_general.json ;;
    smoke)
      # the whole daemon path on the GPU with the tiny networks (every stage's CUDA code runs)
      $g generate "a red chair" --smoke --device cuda --out "$out/smoke_text.ply" --no-validate
      $g generate --image assets/smoke/test_rgba.png --smoke --device cuda --out "$out/smoke_image.ply" --no-validate ;;
    render)
      # the CUDA rasterizer vs the CPU one and vs gsplat 1.5.3 (JIT-built on first use), 16 validator views
      python3 scripts/bench/gsplat_render.py .gpu/ply/hamburger.ply --out "$out/gsplat_views.npy"
      $g render-check .gpu/ply/hamburger.ply --reference "$out/gsplat_views.npy"
      $g render .gpu/ply/hamburger.ply --device cuda --out "$out/hamburger_cuda.png" ;;
    scorers)
      $g microbench scorers --dtype float16 ;;
    pipeline)
      # TRELLIS and LGM (ImageDream / MVDream) in one process: every route, per-stage medians, peak per configuration
      $g microbench pipeline --manifests .gpu/manifests --generator trellis,lgm --fast-only --runs 3 ;;
    memplan)
      # the 24 GB plan under a 24 GiB allocator cap: resident size per model and the whole job's peak
      $g microbench pipeline --manifests .gpu/manifests --generator trellis --memory-plan 24gb --cap-gib 24 --fast-only --runs 3
      $g microbench pipeline --manifests .gpu/manifests --generator lgm --memory-plan 24gb --cap-gib 24 --runs 3 ;;
    lgm)
      $g microbench lgm --manifests .gpu/manifests --dtype float16 ;;
    layouts)
      $g microbench trellis --layouts-only --device cuda --voxels 20000 ;;
    bench)
      # the configuration chooser over the real-size random-weight pipeline
      $g bench --random-weights .gpu/manifests --device cuda --only fast --limit 3 --images 2 --warmup 1 \
        --json "$out/bench.json" --report "$out/bench-report" ;;
    routes)
      # one daemon with both generators (resident plan); requests pick generator and text route
      $g serve --random-weights .gpu/manifests --generator trellis,lgm --device cuda --port 10007 --no-validate > "$out/routes-daemon.log" 2>&1 &
      pid=$!
      for _ in $(seq 1 240); do curl -sf localhost:10007/health >/dev/null 2>&1 && break; sleep 1; done
      curl -s localhost:10007/health | python3 -m json.tool
      for body in '{"prompt": "a red chair", "seed": 1}' \
                  '{"prompt": "a red chair", "seed": 1, "options": {"generator": "lgm"}}' \
                  '{"prompt": "a red chair", "seed": 1, "options": {"generator": "lgm", "text_route": "mvdream"}}' \
                  '{"prompt": "a red chair", "options": {"generator": "trellis", "text_route": "mvdream"}}'; do
        echo "== $body"
        curl -s -o /dev/null -D - -X POST localhost:10007/generate -H 'Content-Type: application/json' -d "$body" \
          | grep -iE "^HTTP|x-generator|x-text-route|x-gaussians|x-pipeline|content-length"
      done
      kill -TERM $pid; wait $pid; tail -8 "$out/routes-daemon.log" ;;
    daemon)
      # the daemon at real sizes (random weights) on this GPU, then readiness against it
      $g serve --random-weights .gpu/manifests --device cuda --port 10006 > "$out/daemon.log" 2>&1 &
      pid=$!
      for _ in $(seq 1 120); do curl -sf localhost:10006/health >/dev/null 2>&1 && break; sleep 1; done
      curl -s localhost:10006/health; echo
      $g readiness http://127.0.0.1:10006 --texts 3 --png-images 2 --jpeg-requests 2 --clients 2 --duration 20 \
        --json "$out/readiness.json"
      kill -TERM $pid; wait $pid; tail -5 "$out/daemon.log" ;;
    ply)
      $g bench-ply --gaussians 500000 ;;
    *) echo "unknown group $group" ;;
  esac 2>&1 | tee -a "$out/bench-$group.log"
done
