#!/usr/bin/env bash
# Chat throughput and latency on PostgreSQL: one node and two nodes (clients split between them) on a throwaway
# PostgreSQL 15 cluster with its default durability (fsync and synchronous commit on), beside the embedded SQLite
# store, all on this machine. The figures BENCHMARKS.md quotes ("Several nodes on PostgreSQL").
#   Benchmarks/postgres.sh           release build, 10 s runs
#   Benchmarks/postgres.sh --tiny    debug build, 1 s runs: checks that it still runs
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/common.sh  # sets $tiny from --tiny
build_products chat-server chat-bench
bench="$BIN/chat-bench"
seconds=10
clients=(--customers 500 --agents 5)
rates=(2000 5000)
if $tiny; then seconds=1; clients=(--customers 20 --agents 2); rates=(100 200); fi

bin=$(dirname "$(readlink -f "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | tail -1)")")
cluster=$(mktemp -d /tmp/chat-bench-pg.XXXXXX)
chown postgres "$cluster"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
as_postgres "$bin/initdb" -D "$cluster/data" -U chat --auth=trust -E UTF8 >/dev/null
# setpriv itself, not the function: in the background a function runs in a subshell, and $! would be that shell's.
setpriv --reuid=postgres --regid=postgres --init-groups -- "$bin/postgres" -D "$cluster/data" -p "$port" -k "$cluster" \
    -c listen_addresses=127.0.0.1 -c max_connections=200 >"$cluster/log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true; rm -rf "$cluster"' EXIT
trap 'exit 1' INT TERM
for _ in $(seq 100); do
    as_postgres "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" && break
    sleep 0.1
done

run() {  # run NAME ARGS...: a fresh database per run, so each starts from the same empty state
    local name=$1; shift
    echo; echo "== $name"
    as_postgres "$bin/psql" -q -h 127.0.0.1 -p "$port" -U chat -d postgres -c "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"
    "$bench" --database "postgres://chat@127.0.0.1:$port/bench" --duration "$seconds" "${clients[@]}" "$@"
}

echo "machine: $(nproc) cores, $(uname -sr), PostgreSQL $("$bin/postgres" --version | awk '{print $3}'), $CONFIG build, $(date -u +%Y-%m-%d)"
echo; echo "== SQLite, one node, closed loop (window 8)"
"$bench" --duration "$seconds" "${clients[@]}" --window 8
for rate in "${rates[@]}"; do
    echo; echo "== SQLite, one node, open loop $rate msg/s"
    "$bench" --duration "$seconds" "${clients[@]}" --rate "$rate"
done
for nodes in 1 2; do
    run "PostgreSQL, $nodes node(s), closed loop (window 8)" --nodes "$nodes" --window 8
    for rate in "${rates[@]}"; do
        run "PostgreSQL, $nodes node(s), open loop $rate msg/s" --nodes "$nodes" --rate "$rate"
    done
done
