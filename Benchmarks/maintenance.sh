#!/usr/bin/env bash
# Media store maintenance benchmark (issue 6): `chat-admin media verify` hashing throughput against sha256sum and
# `openssl dgst -sha256` on the same files, and `media stats`, `prune --dry-run`, `prune` and `gc` over a store of
# many small blobs.
#
#   Benchmarks/maintenance.sh [blobs] [verify-MiB]    (defaults 100000 and 2048; Benchmarks/common.sh build)
#
# Targets from the issue: verify >= 1 GB/s; stats and prune over 100,000 blobs < 10 s each.
set -euo pipefail
cd "$(dirname "$0")/.."
BLOBS=${1:-100000}
VERIFY_MIB=${2:-2048}
source Benchmarks/common.sh
build_products chat-admin
ADMIN="$BIN/chat-admin"
WORK=$(mktemp -d /tmp/maintenance-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# Two stores, each made by chat-admin (schema migrations) and then filled by Python: files where the server puts
# them and rows as the server writes them. Half the small blobs are attached to messages, half are 100 days old.
make_store() { # directory count size-bytes
    mkdir -p "$1"
    "$ADMIN" tokens list --data-dir "$1" >/dev/null
    python3 - "$1" "$2" "$3" <<'PY'
import hashlib, os, sqlite3, sys, time
root, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
db = sqlite3.connect(os.path.join(root, "chat.sqlite"))
now = int(time.time() * 1000)
old = now - 100 * 86_400_000
db.execute("INSERT INTO conversations (customer, created_at) VALUES ('alice', ?)", (now,))
conversation = db.execute("SELECT id FROM conversations").fetchone()[0]
seed = os.urandom(size + count)
for i in range(count):
    data = seed[i:i + size]  # distinct content per blob without generating it all at random
    digest = hashlib.sha256(data).hexdigest()
    directory = os.path.join(root, "media", "blobs", "sha256", digest[:2], digest[2:4])
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, digest), "wb") as f:
        f.write(data)
    db.execute("INSERT INTO blobs (hash, size, mime_type, created_at, last_referenced_at) VALUES (?, ?, 'application/octet-stream', ?, ?)",
               (digest, size, old, old if i % 2 else now))
    db.execute("INSERT INTO uploads (id, username, name, state, blob_hash, size, created_at, updated_at, completed_at) VALUES (?, 'alice', ?, 'done', ?, ?, ?, ?, ?)",
               (f"u{i}", f"f{i}.bin", digest, size, old, old, old))
    if i % 2 == 0:
        db.execute("INSERT INTO messages (conversation_id, seq, sender, sender_role, client_id, body, sent_at, customer_ordinal) VALUES (?, ?, 'alice', 'customer', ?, '', ?, ?)",
                   (conversation, i + 1, f"c{i}", now, i + 1))
        message = db.execute("SELECT last_insert_rowid()").fetchone()[0]
        db.execute("INSERT INTO attachments (message_id, position, blob_hash, name, uploader) VALUES (?, 0, ?, ?, 'alice')",
                   (message, digest, f"f{i}.bin"))
db.commit()
PY
}

timed() { # label command...
    local start end
    start=$(date +%s.%N)
    "${@:2}" >/dev/null
    end=$(date +%s.%N)
    python3 -c "print(f'   {\"$1\":<34} {$end-$start:7.2f} s')"
}

echo "== verify throughput: $((VERIFY_MIB / 8)) blobs of 8 MiB ($VERIFY_MIB MiB, files in page cache), $(nproc) cores"
make_store "$WORK/big" $((VERIFY_MIB / 8)) $((8 * 1024 * 1024))
FILES=$(find "$WORK/big/media/blobs" -type f)
cat $FILES >/dev/null
BYTES=$((VERIFY_MIB * 1024 * 1024))
rate() { python3 -c "print(f'   {\"$1\":<34} {$BYTES/($3-$2)/1e9:7.2f} GB/s  ({$3-$2:.2f} s)')"; }
for _ in 1 2; do
    S=$(date +%s.%N); "$ADMIN" media verify --data-dir "$WORK/big" >/dev/null; E=$(date +%s.%N); rate "chat-admin media verify" "$S" "$E"
done
S=$(date +%s.%N); echo "$FILES" | xargs sha256sum >/dev/null; E=$(date +%s.%N); rate "sha256sum (one process)" "$S" "$E"
S=$(date +%s.%N); echo "$FILES" | xargs -P "$(nproc)" -n 16 sha256sum >/dev/null; E=$(date +%s.%N); rate "sha256sum (xargs -P $(nproc))" "$S" "$E"
S=$(date +%s.%N); echo "$FILES" | xargs -P "$(nproc)" -n 16 openssl dgst -sha256 >/dev/null; E=$(date +%s.%N); rate "openssl dgst -sha256 (xargs -P $(nproc))" "$S" "$E"

echo "== $BLOBS blobs of 4 KiB (half attached, half unreferenced and 100 days old)"
S=$(date +%s.%N); make_store "$WORK/small" "$BLOBS" 4096; E=$(date +%s.%N)
python3 -c "print(f'   (store made in {$E-$S:.0f} s)')"
timed "media stats" "$ADMIN" media stats --data-dir "$WORK/small"
timed "media stats --by-user" "$ADMIN" media stats --by-user --data-dir "$WORK/small"
timed "media verify" "$ADMIN" media verify --data-dir "$WORK/small"
timed "media prune --older-than 90d --dry-run" "$ADMIN" media prune --older-than 90d --dry-run --data-dir "$WORK/small"
timed "media gc --dry-run" "$ADMIN" media gc --dry-run --data-dir "$WORK/small"
timed "media prune --unreferenced" "$ADMIN" media prune --unreferenced --data-dir "$WORK/small"
timed "media prune --max-total 100MiB" "$ADMIN" media prune --max-total 100MiB --data-dir "$WORK/small"
"$ADMIN" media stats --data-dir "$WORK/small" | sed -n '1p;8p' | sed 's/^/   after: /'
