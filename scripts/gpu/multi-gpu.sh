#!/usr/bin/env bash
# On a CUDA machine with at least 2 GPUs, after scripts/gpu/remote-setup.sh (not run yet: written for the first
# multi-GPU machine). Measures one daemon with 1 worker (cuda:0), then with 2 workers (cuda:0 and cuda:1), under the
# same closed-loop image-to-3D load; prints throughput, its ratio, p50/p99. Then a failure drill: worker 1's first
# jobs hit a real CUDA out-of-memory error (hidden --inject-oom-worker flag) while worker 0 keeps serving; checks
# that exactly those requests got 503, every other one 200, and that worker 1 served again afterwards.
#   GEN3D        gen3d binary (default .gpu/bin/gen3d)
#   IMAGE        image prompt (default assets/smoke/test_rgba.png)
#   CONCURRENCY  clients sending back to back (default 4: two per GPU keeps both workers fed)
#   DURATION     seconds of load per configuration (default 120; make it many job lengths)
#   SERVE_ARGS   extra serve flags, e.g. "--smoke" or "--models-dir /models --no-validate" (default: none)
#   PORT         daemon port (default 10016)
#   OOM_JOBS     jobs of worker 1 that fail in the drill (default 3)
#   OUT          log folder (default ./bench-out)
#   ONE_DEVICES / TWO_DEVICES  --device of the two configurations (default 0 and 0,1). A dry run of this script
#                on a machine without GPUs: ONE_DEVICES=cpu TWO_DEVICES=cpu,cpu SERVE_ARGS=--smoke GEN3D=.build/debug/gen3d
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
g="${GEN3D:-.gpu/bin/gen3d}"
image="${IMAGE:-assets/smoke/test_rgba.png}"
concurrency="${CONCURRENCY:-4}"
duration="${DURATION:-120}"
port="${PORT:-10016}"
oom_jobs="${OOM_JOBS:-3}"
out="${OUT:-$root/bench-out}"
url="http://127.0.0.1:$port"
mkdir -p "$out"
read -r -a serve_args <<<"${SERVE_ARGS:-}"

one_devices="${ONE_DEVICES:-0}"
two_devices="${TWO_DEVICES:-0,1}"
smi() { command -v nvidia-smi >/dev/null && nvidia-smi "$@"; }
if [ "$two_devices" = "0,1" ]; then
  gpus=$(smi -L 2>/dev/null | grep -c "^GPU" || true)
  if [ "${gpus:-0}" -lt 2 ]; then echo "needs 2 CUDA GPUs, nvidia-smi lists ${gpus:-0}"; exit 1; fi
  smi -L
fi

daemon=""
stop_daemon() {
  [ -n "$daemon" ] || return 0
  kill -TERM "$daemon" 2>/dev/null
  wait "$daemon" 2>/dev/null
  daemon=""
}
trap stop_daemon EXIT

# start_daemon NAME FLAGS...: serve in the background, wait until /health answers 200 (weights load first).
start_daemon() {
  local name="$1"; shift
  "$g" serve --host 127.0.0.1 --port "$port" --queue 32 "${serve_args[@]}" "$@" >"$out/multi-gpu-serve-$name.log" 2>&1 &
  daemon=$!
  for _ in $(seq 1 1200); do
    if ! kill -0 "$daemon" 2>/dev/null; then
      echo "daemon '$name' exited:"; tail -20 "$out/multi-gpu-serve-$name.log"; daemon=""; return 1
    fi
    curl -sf -o /dev/null "$url/health" && return 0
    sleep 0.5
  done
  echo "daemon '$name' not ready after 600 s"; return 1
}

# load NAME CLIENTS SECONDS: closed-loop image-to-3D load, JSON report in $out/multi-gpu-load-NAME.json
load() {
  "$g" loadtest --url "$url" --image "$image" --concurrency "$2" --duration "$3" --json >"$out/multi-gpu-load-$1.json"
}

health() { curl -s "$url/health" >"$out/multi-gpu-health-$1.json"; }

for config in "one:$one_devices" "two:$two_devices"; do
  name="${config%%:*}"; devices="${config#*:}"
  echo "=== $name worker(s): --device $devices"
  start_daemon "$name" --device "$devices" || exit 1
  # Warm-up: one job per worker (CUDA context, cuDNN/cuBLAS plans, allocator pools), not measured.
  workers=$(( $(tr -cd ',' <<<"$devices" | wc -c) + 1 ))
  load "$name-warmup" "$workers" 1
  load "$name" "$concurrency" "$duration"
  health "$name"
  smi --query-gpu=index,memory.used,utilization.gpu --format=csv | tee -a "$out/multi-gpu-smi.log"
  stop_daemon
done

python3 - "$out" <<'EOF'
import json, sys
out = sys.argv[1]
r = {n: json.load(open(f"{out}/multi-gpu-load-{n}.json")) for n in ("one", "two")}
for n in ("one", "two"):
    x = r[n]
    print(f"{n:>3} worker(s): {x['completed']} jobs ({x['succeeded']} ok) in {x['elapsed_s']:.1f} s = "
          f"{x['requests_per_second']:.3f} jobs/s, p50 {x['p50_s']:.2f} s, p99 {x['p99_s']:.2f} s, errors {x['errors']}")
ratio = r["two"]["requests_per_second"] / max(r["one"]["requests_per_second"], 1e-9)
print(f"throughput ratio 2 GPUs / 1 GPU: {ratio:.2f}x (ideal 2.00x)")
EOF

echo "=== failure drill on --device $two_devices: worker 1 fails its first $oom_jobs job(s) out of memory"
start_daemon drill --device "$two_devices" --inject-oom-worker 1 --inject-oom-jobs "$oom_jobs" || exit 1
load drill "$concurrency" "$(( duration / 2 ))"
health drill
stop_daemon
python3 - "$out" "$oom_jobs" <<'EOF'
import json, sys
out, injected = sys.argv[1], int(sys.argv[2])
load = json.load(open(f"{out}/multi-gpu-load-drill.json"))
workers = json.load(open(f"{out}/multi-gpu-health-drill.json"))["queue"]["workers"]
for w in workers:
    print({k: w.get(k) for k in ("index", "device", "jobs_completed", "jobs_failed", "last_error")})
w0, w1 = workers
failed = load["errors"].get("http 503", 0)
checks = [
    ("exactly the injected jobs got 503", failed == injected, f"{failed} x 503, errors {load['errors']}"),
    ("every other request got 200", load["succeeded"] == load["completed"] - injected,
     f"{load['succeeded']} ok of {load['completed']}"),
    ("worker 1 recorded the out-of-memory errors", w1["jobs_failed"] == injected
     and "out of device memory" in (w1.get("last_error") or {}).get("message", ""), str(w1.get("last_error"))),
    ("worker 1 served again after them", w1["jobs_completed"] > injected, f"{w1['jobs_completed']} jobs"),
    ("worker 0 was not affected", w0["jobs_failed"] == 0 and w0["jobs_completed"] > 0, f"{w0['jobs_completed']} jobs"),
]
for what, ok, detail in checks:
    print(f"{'PASS' if ok else 'FAIL'}: {what} ({detail})")
sys.exit(0 if all(ok for _, ok, _ in checks) else 1)
EOF
