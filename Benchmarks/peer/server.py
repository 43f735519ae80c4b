#!/usr/bin/env python3
"""The original design's stack as a benchmark peer: a WebSocket chat relay on the `websockets` package that stores
every message with `sqlite3` before relaying it. It speaks the subset of docs/PROTOCOL.md that chat-bench uses:
hello -> welcome/synced, send -> store, ack, relay to every agent. Tokens come from the original Sessions table
(username, session_token) plus a role column, as chat-bench writes them.

Usage: server.py --port PORT --db PATH   (prints "port=N" on stderr once listening)
"""
import argparse, asyncio, json, sqlite3, sys, time

import websockets


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    db = sqlite3.connect(args.db)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("""CREATE TABLE IF NOT EXISTS Messages (id INTEGER PRIMARY KEY, customer TEXT, seq INTEGER,
                  sender TEXT, client_id TEXT, body TEXT, sent_at INTEGER)""")
    sessions = {token: (user, role) for user, token, role in db.execute("SELECT username, session_token, role FROM Sessions")}
    agents = set()
    seqs = {}

    async def handler(ws):
        token = (ws.request.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        hello = json.loads(await ws.recv())
        user, role = sessions.get(hello.get("token") or token, (None, None))
        if user is None:
            await ws.close(4001, "unknown token")
            return
        await ws.send(json.dumps({"type": "welcome", "protocol": 1, "user": user, "role": role}))
        await ws.send(json.dumps({"type": "synced", "lastSeqs": {}}))
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
                await ws.send(json.dumps({"type": "ack", "clientId": frame["clientId"], "id": cursor.lastrowid,
                                          "conversation": customer, "seq": seq, "sentAt": now, "duplicate": False}))
                message = json.dumps({"type": "message", "id": cursor.lastrowid, "conversation": customer, "seq": seq,
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
