#!/usr/bin/env python3
"""The original design's stack as a benchmark peer: a WebSocket chat relay on the `websockets` package that stores
every message with `sqlite3` before relaying it. It speaks the subset of docs/PROTOCOL.md that chat-bench uses:
hello -> welcome/synced, send -> store, ack, relay to every agent. Tokens come from the original Sessions table
(username, session_token) plus a role column, as chat-bench writes them, looked up on each connect.

Usage: server.py --port PORT --db PATH   (prints "port=N" on stderr once listening)
"""
import argparse, asyncio, json, signal, sqlite3, sys, time

import websockets


def dumps(value):
    """Compact JSON, byte for byte the shape chat-server sends (chat-bench matches on `"type":"ack"`)."""
    return json.dumps(value, separators=(",", ":"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    # A Swift parent (Foundation's Process) passes on its blocked signal mask; let SIGTERM and SIGINT stop us.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    db = sqlite3.connect(args.db)
    # fetchall() everywhere: an unfinished statement keeps its read snapshot open and new tokens would stay unseen.
    db.execute("PRAGMA journal_mode=WAL").fetchall()
    db.execute("PRAGMA synchronous=FULL")
    db.execute("""CREATE TABLE IF NOT EXISTS Messages (id INTEGER PRIMARY KEY, customer TEXT, seq INTEGER,
                  sender TEXT, client_id TEXT, body TEXT, sent_at INTEGER)""")
    agents = set()
    seqs = {}

    async def handler(ws):
        token = (ws.request.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        hello = json.loads(await ws.recv())
        # Looked up on every connect, as the original server did, so tokens made after start-up work.
        rows = db.execute("SELECT username, role FROM Sessions WHERE session_token = ?", (hello.get("token") or token,)).fetchall()
        user, role = rows[0] if rows else (None, None)
        if user is None:
            await ws.close(4001, "unknown token")
            return
        # The peer enforces no limits; it announces generous ones so protocol clients accept its welcome.
        await ws.send(dumps({"type": "welcome", "protocol": 1, "user": user, "role": role,
                                  "limits": {"maxTextBytes": 1 << 20, "messagesPerSecond": 1e6, "burst": 1000000,
                                             "historyPageMax": 100},
                                  "serverTime": int(time.time() * 1000)}))
        await ws.send(dumps({"type": "synced", "lastSeqs": {}}))
        if role == "agent":
            agents.add(ws)
        try:
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") != "send":
                    continue
                customer = user if role == "customer" else frame.get("conversation")
                seq = seqs.get(customer, 0) + 1
                seqs[customer] = seq
                now = int(time.time() * 1000)
                cursor = db.execute("INSERT INTO Messages (customer, seq, sender, client_id, body, sent_at) VALUES (?,?,?,?,?,?)",
                                    (customer, seq, user, frame["clientId"], frame["text"], now))
                db.commit()
                await ws.send(dumps({"type": "ack", "clientId": frame["clientId"], "id": cursor.lastrowid,
                                          "conversation": customer, "seq": seq, "sentAt": now, "duplicate": False}))
                message = dumps({"type": "message", "id": cursor.lastrowid, "conversation": customer, "seq": seq,
                                      "sender": user, "senderRole": role, "clientId": frame["clientId"],
                                      "text": frame["text"], "sentAt": now, "broadcast": False})
                for agent in list(agents):
                    if agent is not ws:
                        try:
                            await agent.send(message)
                        except websockets.ConnectionClosed:
                            pass
        finally:
            agents.discard(ws)

    async def serve():
        async with websockets.serve(handler, "127.0.0.1", args.port, max_queue=None) as server:
            port = server.sockets[0].getsockname()[1]
            print(f"port={port}", file=sys.stderr, flush=True)
            await asyncio.Future()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
