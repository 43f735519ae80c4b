#!/usr/bin/env python3
"""Lists the async frame size of every Swift async function in a binary, largest first.

A suspended async function keeps its whole frame in its task's memory, so the frames of the functions an idle
connection waits in are part of every connection's memory. Each async function has an "async function pointer"
(mangled name ending in `Tu`): a relative offset to the function, then the size of its initial frame.

    Benchmarks/async-frames.py .build/release/chat-server 'ConnectionHandler|WebSocketInbound'
"""
import re
import struct
import subprocess
import sys


def sections(binary):
    """(address, file offset, size, name) of each allocated section."""
    found = []
    listing = subprocess.run(["readelf", "-S", "-W", binary], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        match = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
        if match and int(match.group(2), 16):
            found.append((int(match.group(2), 16), int(match.group(3), 16), int(match.group(4), 16), match.group(1)))
    return found


def frame_sizes(binary):
    data = open(binary, "rb").read()
    allocated = sections(binary)
    symbols = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True).stdout
    sizes = []
    for line in symbols.splitlines():
        parts = line.split()
        if len(parts) != 3 or not parts[2].endswith("Tu"):
            continue
        address = int(parts[0], 16)
        for start, offset, size, name in allocated:
            if start <= address < start + size:
                if name != ".bss":
                    at = offset + address - start
                    _, frame = struct.unpack("<iI", data[at:at + 8])
                    sizes.append((frame, parts[2]))
                break
    sizes.sort(reverse=True)
    names = subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(n for _, n in sizes),
                           capture_output=True, text=True, check=True).stdout.splitlines()
    return [(frame, name.removeprefix("async function pointer to ")) for (frame, _), name in zip(sizes, names)]


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: async-frames.py BINARY [REGEX]")
    pattern = re.compile(sys.argv[2]) if len(sys.argv) > 2 else None
    for frame, name in frame_sizes(sys.argv[1]):
        if pattern is None or pattern.search(name):
            print(f"{frame:6d}  {name[:200]}")


if __name__ == "__main__":
    main()
