#!/usr/bin/env bash
# Media on an object store (issue 17): ingest of one large file over HTTP into moto's S3 server against the local
# directory (MB/s end to end, server CPU seconds per GiB), and the server's extra resident memory while it takes a
# file in and serves it back (target < 64 MiB extra), also to a slow client and from a slow store (a throttling
# proxy in front of moto). moto keeps objects in memory and is slow itself: its speed bounds the first figure, so
# the CPU figure is the one that says what the server costs. "extra" is over the idle server's resident memory.
#
#   [CASES='local s3 s3slow'] Benchmarks/media-s3.sh [size-MiB]      (default 1024; release build via Benchmarks/common.sh; SCRATCH=.build-release)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
source Benchmarks/common.sh
# ADMIN: a chat-admin of any build (it only makes tokens); the release one by default.
if [ -n "${ADMIN:-}" ]; then build_products chat-server; else build_products chat-server chat-admin; ADMIN=$BIN/chat-admin; fi

WORK=$(mktemp -d /tmp/media-s3-bench.XXXXXX)
SERVER_PID= MOTO_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    # The whole group: moto_server may be a wrapper (pyenv's shim) around the Python process.
    [ -n "$MOTO_PID" ] && kill -- "-$MOTO_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

FILE="$WORK/payload.bin"
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$FILE"
MOTO_PORT=$(free_port)
setsid moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
for _ in $(seq 100); do curl -s "http://127.0.0.1:$MOTO_PORT" >/dev/null && break; sleep 0.1; done
curl -sf -X PUT "http://127.0.0.1:$MOTO_PORT/bench" >/dev/null
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
STORE="s3://bench/media?endpoint=http://127.0.0.1:$MOTO_PORT&region=us-east-1"

run_case() {  # run_case LABEL [chat-server flags...]
    local label=$1; shift
    local dir="$WORK/$label"; mkdir -p "$dir"
    local token port
    token=$("$ADMIN" tokens create bench --role customer --data-dir "$dir" 2>/dev/null)
    port=$(free_port)
    "$BIN/chat-server" --data-dir "$dir" --port "$port" --durability normal --log-level warning \
        --max-upload-bytes $((4 * 1024 * 1024 * 1024)) --upload-bytes-per-day $((64 * 1024 * 1024 * 1024)) "$@" 2>"$dir/server.log" &
    SERVER_PID=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
    python3 - "$label" "$port" "$token" "$FILE" "$SERVER_PID" <<'PY' || { tail -n 5 "$dir/server.log" "$WORK/moto.log" >&2; return 1; }
import json, os, socket, struct, subprocess, sys, time
label, port, token, path, pid = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
size = os.path.getsize(path)
sys.path.insert(0, "Benchmarks")
from procstat import Sampler, cpu_seconds, rss_kib
idle = rss_kib(pid)
def measure(args, check=True):
    c0, t0 = cpu_seconds(pid), time.time()
    s = Sampler(pid, 0.01); s.start()
    out = subprocess.run(args, check=check, capture_output=True).stdout
    s.stop()
    return out, time.time() - t0, cpu_seconds(pid) - c0, (s.peak - idle) / 1024
auth = ["-H", f"Authorization: Bearer {token}"]
out, secs, cpus, extra = measure(["curl", "-sf", "-X", "POST", *auth, "-H", "Content-Type: application/octet-stream",
                                  "-T", path, f"http://127.0.0.1:{port}/media?name=payload.bin"])
sha = json.loads(out)["attachment"]["sha256"]
print(f"{label:6} upload   {size/secs/1e6:7.0f} MB/s  server CPU {cpus/(size/2**30):6.2f} s/GiB  extra RSS {extra:6.1f} MiB")
# Only attached blobs are served: attach it to a message over a minimal WebSocket (as in media.sh), then download.
ws = socket.create_connection(("127.0.0.1", port))
ws.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {token}\r\n\r\n").encode())
head = b""
while not head.endswith(b"\r\n\r\n"): head += ws.recv(1)
def send_text(obj):
    payload = json.dumps(obj).encode()
    n = len(payload)
    header = struct.pack("!BB", 0x81, 0x80 | n) if n < 126 else struct.pack("!BBH", 0x81, 0x80 | 126, n)
    ws.sendall(header + b"\0\0\0\0" + payload)
buffer = b""
def until(kind):
    global buffer
    while True:
        while len(buffer) < 2: buffer += ws.recv(65536)
        n, off = buffer[1] & 0x7F, 2
        if n == 126:
            while len(buffer) < 4: buffer += ws.recv(65536)
            n, off = struct.unpack("!H", buffer[2:4])[0], 4
        elif n == 127:
            while len(buffer) < 10: buffer += ws.recv(65536)
            n, off = struct.unpack("!Q", buffer[2:10])[0], 10
        while len(buffer) < off + n: buffer += ws.recv(65536)
        payload, buffer = buffer[off:off + n], buffer[off + n:]
        frame = json.loads(payload) if payload[:1] == b"{" else {}
        if frame.get("type") == "error": raise SystemExit(f"server error: {frame}")
        if frame.get("type") == kind: return frame
send_text({"type": "hello", "protocol": [1]}); until("synced")
send_text({"type": "send", "clientId": "bench", "text": "file", "attachments": [{"uploadId": json.loads(out)["uploadId"]}]})
until("ack")
_, secs, cpus, extra = measure(["curl", "-sf", *auth, "-o", "/dev/null", f"http://127.0.0.1:{port}/media/{sha}"])
print(f"{label:6} download {size/secs/1e6:7.0f} MB/s  server CPU {cpus/(size/2**30):6.2f} s/GiB  extra RSS {extra:6.1f} MiB")
# A slow client: 10 MB/s for 15 s. The server must hold back reading the file (or the object) to the client's pace.
out, secs, _, extra = measure(["curl", "-s", *auth, "--limit-rate", "10M", "--max-time", "15", "-o", "/dev/null",
                               "-w", "%{size_download}", f"http://127.0.0.1:{port}/media/{sha}"], check=False)
print(f"{label:6} slow client (10 MB/s, {int(out or 0)/1e6:.0f} MB in {secs:.0f} s)  extra RSS {extra:6.1f} MiB  (idle {idle/1024:.1f} MiB)")
PY
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
}
# A slow store: the same moto behind a proxy that passes 40 MB/s each way.
THROTTLE_PID=
python3 Benchmarks/throttle.py "$MOTO_PORT" 40000000 >"$WORK/throttle.port" 2>/dev/null &
THROTTLE_PID=$!
trap 'kill "$THROTTLE_PID" 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 50); do [ -s "$WORK/throttle.port" ] && break; sleep 0.1; done
SLOW_STORE="s3://bench/slow?endpoint=http://127.0.0.1:$(cat "$WORK/throttle.port")&region=us-east-1"

echo "== ${SIZE_MIB} MiB over HTTP, release build ($(nproc) cores, shared machine: figures vary)"
# CASES picks some of them, e.g. CASES=s3slow.
for case in ${CASES:-local s3 s3slow}; do
    case $case in
        local) run_case local ;;
        s3) run_case s3 --media-store "$STORE" ;;
        s3slow) run_case s3slow --media-store "$SLOW_STORE" ;;
    esac
done
