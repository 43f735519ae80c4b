"""A TCP proxy on 127.0.0.1 that passes bytes at most RATE bytes per second in each direction of each connection:
a slow object store (or a slow link) for media-s3.sh. Prints its port, then runs until killed.

    python3 Benchmarks/throttle.py TARGET_PORT RATE_BYTES_PER_SECOND
"""
import socket, sys, threading, time

def pump(source, sink, rate):
    budget_start, sent = time.monotonic(), 0
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
            sent += len(data)
            ahead = sent / rate - (time.monotonic() - budget_start)
            if ahead > 0:
                time.sleep(ahead)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass

def main():
    target, rate = int(sys.argv[1]), float(sys.argv[2])
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print(listener.getsockname()[1], flush=True)
    while True:
        client, _ = listener.accept()
        upstream = socket.create_connection(("127.0.0.1", target))
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=pump, args=(a, b, rate), daemon=True).start()

main()
