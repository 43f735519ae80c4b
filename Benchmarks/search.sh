#!/usr/bin/env bash
# Full-text search over a million stored messages (SQLite, FTS5): query time p50/p95 through the real store, the
# index's size, and what indexing costs the message write path (stored/s, chat-bench closed loop, with the search
# trigger and without it). The figures BENCHMARKS.md quotes ("Search").
#   Benchmarks/search.sh           release build, 1,000,000 messages, 2,000 queries per kind, 10 s load runs
#   Benchmarks/search.sh --tiny    debug build, 20,000 messages, 200 queries, 1 s runs: checks that it still runs
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/common.sh  # sets $tiny from --tiny
build_products chat-server chat-bench chat-admin
command -v sqlite3 >/dev/null || { echo "search.sh needs the sqlite3 program (Debian package sqlite3)" >&2; exit 1; }
bench="$BIN/chat-bench"
messages=1000000 queries=2000 seconds=10 clients=(--customers 500 --agents 5)
if $tiny; then messages=20000 queries=200 seconds=1 clients=(--customers 20 --agents 2); fi

work=$(mktemp -d /tmp/chat-bench-search.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "machine: $(nproc) cores, $(uname -sr), SQLite $(sqlite3 --version | awk '{print $1}'), $CONFIG build, $(date -u +%Y-%m-%d)"

echo; echo "== $messages messages, indexed as they are inserted"
"$BIN/chat-admin" tokens create bench --role agent --data-dir "$work" >/dev/null  # creates and migrates chat.sqlite
python3 Benchmarks/search-data.py "$work/chat.sqlite" "$messages" "$work/words.txt"
sqlite3 "$work/chat.sqlite" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
sqlite3 "$work/chat.sqlite" "
    SELECT printf('database %.1f MiB; messages table and its indexes %.1f MiB; search index (messages_fts*) %.1f MiB in %d pages',
        (SELECT sum(pgsize) FROM dbstat) / 1048576.0,
        (SELECT sum(pgsize) FROM dbstat WHERE name = 'messages' OR name LIKE 'sqlite_autoindex_messages%' OR name LIKE 'messages_by%') / 1048576.0,
        (SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'messages_fts%') / 1048576.0,
        (SELECT count(*) FROM dbstat WHERE name LIKE 'messages_fts%'))"

echo; echo "== query time, 1-2 words, 20 results at most"
"$bench" --search-db "$work/chat.sqlite" --search-words "$work/words.txt" --search-queries "$queries"

echo; echo "== write path: closed loop (window 8) with the search trigger"
"$bench" --duration "$seconds" "${clients[@]}" --window 8
echo; echo "== write path: closed loop (window 8) without it"
"$bench" --duration "$seconds" "${clients[@]}" --window 8 --without-search-index
