#!/usr/bin/env bash
# Runs the benchmarks in release mode and prints their figures; BENCHMARKS.md holds the latest results.
#   Benchmarks/run.sh            full sizes (several minutes)
#   Benchmarks/run.sh --tiny     tiny sizes, to check that every benchmark still runs (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
tiny=false
[ "${1:-}" = "--tiny" ] && tiny=true

python3 -c 'import websockets' 2>/dev/null || pip install -q websockets
swift build -c release --product chat-server
swift build -c release --product chat-bench
swift build -c release --product chat-admin
bench=.build/release/chat-bench

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(date -u +%Y-%m-%d)"
if $tiny; then
    $bench --customers 10 --agents 2 --duration 1
    $bench --customers 10 --agents 2 --duration 1 --peer python
    $bench --idle 50
    exit 0
fi

echo "== chat: closed loop, 500 customers, 5 agents (throughput)"
$bench --customers 500 --agents 5 --duration 10 --window 8
echo "== chat: open loop 5,000 msg/s, 500 customers, 5 agents (latency)"
$bench --customers 500 --agents 5 --duration 10 --rate 5000
echo "== peer (Python websockets + sqlite3): closed loop, 500 customers, 5 agents"
$bench --customers 500 --agents 5 --duration 10 --window 8 --peer python
echo "== peer: open loop 5,000 msg/s"
$bench --customers 500 --agents 5 --duration 10 --rate 5000 --peer python
echo "== idle connections"
$bench --idle 10000

echo "== thumbnails"
Benchmarks/thumbnails.sh
