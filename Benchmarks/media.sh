#!/usr/bin/env bash
# Media ingest benchmark (issue 3): a 100 MiB upload over a loopback WebSocket and over HTTP against a release
# chat-server, compared with sha256sum and openssl dgst; extra server memory during an upload; libmagic sniffing
# cost per file (same flags as the server, through ctypes) against `file --mime-type`.
#
#   Benchmarks/media.sh [size-MiB]        (default 100; builds with Benchmarks/common.sh: release in .build)
#
# Targets from the issue: WebSocket ingest >= 400 MB/s, extra server memory per upload < 16 MiB, sniffing < 1 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-100}
source Benchmarks/common.sh
build_products chat-server chat-admin

WORK=$(mktemp -d /tmp/media-bench.XXXXXX)
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

FILE="$WORK/payload.bin"
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$FILE"
TOKEN=$("$BIN/chat-admin" tokens create bench --role customer --data-dir "$WORK" 2>/dev/null)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN/chat-server" --data-dir "$WORK" --port "$PORT" --durability normal --log-level warning \
    --upload-bytes-per-day $((64 * 1024 * 1024 * 1024)) 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

echo "== hashing the same ${SIZE_MIB} MiB file in page cache: what a script would use"
cat "$FILE" >/dev/null
for tool in "sha256sum" "openssl dgst -sha256"; do
    START=$(date +%s.%N); $tool "$FILE" >/dev/null; END=$(date +%s.%N)
    python3 -c "print(f'   {\"$tool\":<22} {($SIZE_MIB*1048576)/($END-$START)/1e6:8.0f} MB/s  ({$END-$START:.3f} s)')"
done

python3 - "$PORT" "$TOKEN" "$FILE" "$SERVER_PID" <<'PY'
import hashlib, json, os, socket, struct, sys, time
port, token, path, pid = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
size = os.path.getsize(path)

sys.path.insert(0, "Benchmarks")
import procstat
def rss_kib(): return procstat.rss_kib(pid)
def Sampler(): return procstat.Sampler(pid, 0.005)  # every 5 ms while an upload runs

class WS:
    """Minimal WebSocket client. Masking key 0 (allowed by RFC 6455) keeps Python out of the way of the bytes."""
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                        f"Authorization: Bearer {token}\r\n\r\n").encode())
        head = b""
        while not head.endswith(b"\r\n\r\n"): head += self.s.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.buf = b""
    def send(self, opcode, payload):
        n = len(payload)
        if n < 126: header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536: header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else: header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        self.s.sendall(header + b"\0\0\0\0"); self.s.sendall(payload)
    def text(self, obj): self.send(1, json.dumps(obj).encode())
    def recv_frame(self):
        def need(k):
            while len(self.buf) < k:
                chunk = self.s.recv(65536)
                if not chunk: raise EOFError
                self.buf += chunk
        need(2); n = self.buf[1] & 0x7F; off = 2
        if n == 126: need(4); n = struct.unpack("!H", self.buf[2:4])[0]; off = 4
        elif n == 127: need(10); n = struct.unpack("!Q", self.buf[2:10])[0]; off = 10
        need(off + n); payload = self.buf[off:off+n]; self.buf = self.buf[off+n:]
        return json.loads(payload) if payload[:1] == b"{" else {}
    def until(self, kind):
        while True:
            frame = self.recv_frame()
            if frame.get("type") == "error": raise SystemExit(f"server error: {frame}")
            if frame.get("type") == kind: return frame

def websocket_upload(chunk):
    ws = WS(); ws.text({"type": "hello", "protocol": [1]}); ws.until("synced")
    base = rss_kib(); sampler = Sampler(); sampler.start()
    start = time.perf_counter()
    ws.text({"type": "uploadBegin", "requestId": "b", "name": "payload.bin", "size": size})
    upload = ws.until("uploadReady")["uploadId"]
    with open(path, "rb") as f:
        while True:
            data = f.read(chunk)
            if not data: break
            ws.send(2, data)
    ws.text({"type": "uploadEnd", "uploadId": upload})
    done = ws.until("uploadDone")
    elapsed = time.perf_counter() - start
    sampler.stop()
    return elapsed, done, sampler.peak - base

def http_upload():
    base = rss_kib(); sampler = Sampler(); sampler.start()
    s = socket.create_connection(("127.0.0.1", port))
    start = time.perf_counter()
    s.sendall((f"POST /media?name=payload-http.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
               f"Content-Length: {size}\r\nContent-Type: application/octet-stream\r\n\r\n").encode())
    with open(path, "rb") as f:
        s.sendfile(f)
    response = b""
    while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
        chunk = s.recv(65536)
        if not chunk: break
        response += chunk
    elapsed = time.perf_counter() - start
    sampler.stop()
    status = response.split(b" ", 2)[1]
    body = json.loads(response.split(b"\r\n\r\n", 1)[1])
    return elapsed, status, body, sampler.peak - base

expected = hashlib.sha256(open(path, "rb").read()).hexdigest()
for chunk in (512 * 1024, 1024 * 1024 - 64):
    # First upload stores the blob; a repeat of the same bytes is a dedup (no rename). Both hash every byte.
    for attempt in ("new", "dedup"):
        elapsed, done, extra = websocket_upload(chunk)
        assert done["attachment"]["sha256"] == expected and done["duplicate"] == (attempt == "dedup")
        print(f"== WebSocket upload, {chunk//1024} KiB frames, {attempt:5}: {size/elapsed/1e6:6.0f} MB/s ({elapsed:.3f} s),"
              f" extra server RSS {extra/1024:5.1f} MiB")
        if attempt == "new":
            # Next round stores it again from scratch.
            pass
    os.system(f"rm -rf {os.path.dirname(path)}/media/blobs/sha256/{expected[:2]}")
    os.system(f"sqlite3 {os.path.dirname(path)}/chat.sqlite \"UPDATE uploads SET blob_hash = NULL WHERE blob_hash = '{expected}'; DELETE FROM blobs\" 2>/dev/null")
elapsed, status, body, extra = http_upload()
assert status == b"201" and body["attachment"]["sha256"] == expected, (status, body)
print(f"== HTTP POST /media (dedup):              {size/elapsed/1e6:6.0f} MB/s ({elapsed:.3f} s), extra server RSS {extra/1024:5.1f} MiB")
print(f"   server RSS after the uploads: {rss_kib()/1024:.1f} MiB")
PY

echo "== sniffing: libmagic magic_buffer on a 64 KiB prefix (server's flags) vs file --mime-type"
SAMPLES="$WORK/samples"; mkdir -p "$SAMPLES"
convert -size 800x600 gradient:red-blue "$SAMPLES/a.jpg" 2>/dev/null || true
convert -size 800x600 gradient:red-blue "$SAMPLES/b.png" 2>/dev/null || true
cp /bin/ls "$SAMPLES/photo.jpg"; head -c 1000000 "$FILE" > "$SAMPLES/random.bin"
printf '%%PDF-1.4\n%%%%EOF\n' > "$SAMPLES/c.pdf"; printf 'hello world\n' > "$SAMPLES/d.txt"
python3 - "$SAMPLES" <<'PY'
import ctypes, os, sys, time, subprocess
lib = ctypes.CDLL("libmagic.so.1")
lib.magic_open.restype = ctypes.c_void_p; lib.magic_load.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
lib.magic_buffer.restype = ctypes.c_char_p; lib.magic_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
MAGIC_MIME_TYPE, NO_COMPRESS, NO_TAR = 0x10, 0x1000, 0x2000
h = lib.magic_open(MAGIC_MIME_TYPE | NO_COMPRESS | NO_TAR); lib.magic_load(h, None)
directory = sys.argv[1]
for name in sorted(os.listdir(directory)):
    p = os.path.join(directory, name); prefix = open(p, "rb").read(65536)
    n = 200; t = time.perf_counter()
    for _ in range(n): kind = lib.magic_buffer(h, prefix, len(prefix))
    per = (time.perf_counter() - t) / n
    t = time.perf_counter(); out = subprocess.run(["file", "--brief", "--mime-type", p], capture_output=True).stdout.strip()
    proc = time.perf_counter() - t
    print(f"   {name:12} {kind.decode():32} magic_buffer {per*1e3:6.3f} ms   file(1) {proc*1e3:6.1f} ms ({out.decode()})")
PY
