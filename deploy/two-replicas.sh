#!/usr/bin/env bash
# Two genroute replicas sharing one Redis, on this machine, for trying the scale-out setup.
# Needs redis-server (apt-get install -y redis-server) and a built genroute
# (cargo build --release). Stop everything with Ctrl-C.
#
#   deploy/two-replicas.sh [POLICY]
#
# Then:
#   curl -s localhost:8081/v1/decide -d '{"priority": "quality"}' | jq .backend
#   curl -s localhost:8082/v1/generate -d '{"prompt": "a red fox", "priority": "speed"}'
#   curl -s localhost:8081/v1/budget        # both replicas report the same month
#   curl -s localhost:8082/metrics | grep videogen_
set -euo pipefail
cd "$(dirname "$0")/.."
policy=${1:-policies/demo.yaml}
bin=target/release/genroute
[ -x "$bin" ] || cargo build --release
redis-server --port 6380 --bind 127.0.0.1 --save "" --appendonly yes --dir "$(mktemp -d)" &
redis=$!
trap 'kill $redis ${a:-} ${b:-} 2>/dev/null' EXIT
sleep 0.5
"$bin" serve --policy "$policy" --listen 127.0.0.1:8081 --store redis://127.0.0.1:6380/0 & a=$!
"$bin" serve --policy "$policy" --listen 127.0.0.1:8082 --store redis://127.0.0.1:6380/0 & b=$!
echo "replicas on :8081 and :8082, ledger and breakers in redis on :6380 (Ctrl-C stops all)"
wait
