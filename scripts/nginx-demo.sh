#!/usr/bin/env bash
# Two gen3d daemons behind nginx on loopback (the layout of docs/MULTI_GPU.md, with the smoke pipeline on the CPU
# instead of one daemon per GPU): starts both daemons and nginx, sends requests through nginx, shows which daemon
# answered each (nginx access log) and that a request still passes after one daemon is stopped.
#   GEN3D       the gen3d binary (default: .build/debug/gen3d, built if missing)
#   NGINX       the nginx binary (default: nginx on PATH; `apt-get install nginx`)
#   BASE_PORT   nginx listens on BASE_PORT, the daemons on BASE_PORT+1 and BASE_PORT+2 (default 18600)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
gen3d="${GEN3D:-$root/.build/debug/gen3d}"
nginx_bin="${NGINX:-$(command -v nginx || true)}"
base="${BASE_PORT:-18600}"
image="$root/assets/smoke/test_rgba.png"
[ -n "$nginx_bin" ] || { echo "nginx not found (apt-get install nginx, or set NGINX)"; exit 1; }
[ -x "$gen3d" ] || swift build --product gen3d

work="$(mktemp -d /tmp/gen3d-nginx-demo.XXXXXX)"
mkdir -p "$work/client_body" "$work/proxy" "$work/fastcgi" "$work/uwsgi" "$work/scgi"
pids=()
cleanup() {
  [ -f "$work/nginx.pid" ] && kill -QUIT "$(cat "$work/nginx.pid")" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "logs kept in $work"
}
trap cleanup EXIT

# One daemon per GPU in production (--device 0 / --device 1); here two smoke daemons on the CPU.
for i in 1 2; do
  "$gen3d" serve --smoke --device cpu --host 127.0.0.1 --port $((base + i)) --queue 4 >"$work/daemon$i.log" 2>&1 &
  pids+=($!)
done
for i in 1 2; do
  for _ in $(seq 1 120); do curl -sf -o /dev/null "http://127.0.0.1:$((base + i))/health" && break; sleep 0.5; done
  curl -sf -o /dev/null "http://127.0.0.1:$((base + i))/health" || { echo "daemon $i did not start:"; cat "$work/daemon$i.log"; exit 1; }
done
echo "daemons up on :$((base + 1)) and :$((base + 2))"

# Workers run as root only because this demo runs as root; a system install uses the distribution's user.
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root;"
cat >"$work/nginx.conf" <<EOF
$user_line
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 256; }
http {
    log_format upstream '\$time_local "\$request" \$status \$body_bytes_sent upstream=\$upstream_addr '
                        'upstream_status=\$upstream_status time=\$request_time';
    access_log $work/access.log upstream;
    client_body_temp_path $work/client_body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fastcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;

    upstream gen3d {
        least_conn;
        server 127.0.0.1:$((base + 1)) max_fails=3 fail_timeout=15s;
        server 127.0.0.1:$((base + 2)) max_fails=3 fail_timeout=15s;
        keepalive 8;
    }
    server {
        listen 127.0.0.1:$base;
        client_max_body_size 64m;
        client_body_buffer_size 16m;
        location / {
            proxy_pass http://gen3d;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Request-Id \$request_id;
            proxy_connect_timeout 2s;
            proxy_send_timeout 60s;
            proxy_read_timeout 180s;
            proxy_buffering off;
            proxy_next_upstream error http_502 http_503 non_idempotent;
            proxy_next_upstream_tries 2;
        }
    }
}
EOF
"$nginx_bin" -t -p "$work" -c "$work/nginx.conf" 2>&1 | grep -v "^$" || true
"$nginx_bin" -p "$work" -c "$work/nginx.conf"
for _ in $(seq 1 50); do [ -f "$work/nginx.pid" ] && break; sleep 0.1; done
echo "nginx up on :$base"

post_image() {  # $1 seed, $2 output file: Competition 0 request through nginx
  curl -s -o "$2" -w "seed $1: HTTP %{http_code}, %{size_download} bytes, %{time_total} s\n" \
    -F "prompt_image_file=@$image;type=image/png;filename=prompt.png" -F "seed=$1" "http://127.0.0.1:$base/generate"
}

echo "--- two concurrent image-to-3D requests through nginx (least_conn: one per daemon)"
post_image 1 "$work/a.ply" & c1=$!
sleep 0.3
post_image 2 "$work/b.ply" & c2=$!
wait $c1 $c2
head -c 120 "$work/a.ply" | head -3

echo "--- legacy miner request (form field prompt = base64 image), as the subnet neuron sends it"
base64 -w0 "$image" >"$work/prompt.b64"
curl -s -o "$work/c.ply" -w "legacy: HTTP %{http_code}, %{size_download} bytes, %{time_total} s\n" \
  --data-urlencode "prompt@$work/prompt.b64" "http://127.0.0.1:$base/generate/"

echo "--- daemon 2 stopped: a request sent there is retried on daemon 1 (upstream lists both), daemon 2 is marked failed"
kill -TERM "${pids[1]}"; wait "${pids[1]}" 2>/dev/null || true
post_image 3 "$work/d.ply"
post_image 4 "$work/e.ply"

echo "--- nginx access log (upstream = the daemon that answered)"
cat "$work/access.log"
echo "--- per-daemon /health workers (queried directly; /health through nginx reaches one of them)"
curl -s "http://127.0.0.1:$((base + 1))/health" | python3 -c \
  'import json,sys; [print({k: w.get(k) for k in ("index","device","state","jobs_completed","jobs_failed")}) for w in json.load(sys.stdin)["queue"]["workers"]]'
