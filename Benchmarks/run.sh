#!/usr/bin/env bash
# Every benchmark, one after the other, with the figures BENCHMARKS.md quotes. Installs the peers it needs.
#   Benchmarks/run.sh            full sizes, release build (about 15 minutes after the build)
#   Benchmarks/run.sh --tiny     tiny sizes on the debug build `swift test` made: checks that every benchmark still
#                                runs (CI). Its figures mean nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
source Benchmarks/common.sh  # sets $tiny from --tiny

# Peers and reference tools: the Python stack of the original design, vips, ImageMagick, djpeg, libsixel, time.
python3 -c 'import websockets' 2>/dev/null || pip install -q websockets
packages=(sqlite3 libvips-tools imagemagick libjpeg-turbo-progs libsixel-bin mate-backgrounds time openssl curl webp libheif-examples)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build_products chat-server chat-bench chat-admin
bench="$BIN/chat-bench"
section() { echo; echo "== $*"; }

echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB," \
    "$(uname -sr), $(swift --version 2>/dev/null | head -1), $CONFIG build, $(date -u +%Y-%m-%d)"

if $tiny; then
    section "chat (tiny)"
    $bench --customers 10 --agents 2 --duration 1
    $bench --customers 10 --agents 2 --duration 1 --rate 200
    $bench --customers 10 --agents 2 --duration 1 --peer python
    $bench --idle 50
    section "chat on PostgreSQL, one and two nodes (tiny)"
    Benchmarks/postgres.sh --tiny
    section "search (tiny)"
    Benchmarks/search.sh --tiny
    section "thumbnails (tiny)"
    # Debug build: one file for the sizes, and only the small GIF, WebP and HEIC files (a 12 MP HEIC takes x265 a while).
    RUNS=1 RSS_RUNS=1 SIZES_FILES=base-1920x1200.jpg \
        FORMAT_FILES="gif-anim-640x360.gif webp-anim-640x360.webp heic-1920x1200.heic" Benchmarks/thumbnails.sh
    section "media ingest (tiny)"
    Benchmarks/media.sh 4
    section "media on an object store (tiny)"
    Benchmarks/media-s3.sh 8
    section "image metadata removal (tiny)"
    RUNS=1 Benchmarks/privacy.sh
    section "media maintenance (tiny)"
    Benchmarks/maintenance.sh 200 16
    section "sixel (tiny)"
    RUNS=1 Benchmarks/sixel.sh /usr/share/backgrounds/mate/nature/Garden.jpg
    section "console redraw (tiny)"
    $bench --redraw /usr/share/backgrounds/mate/nature/{Garden,LadyBird,Dune}.jpg --redraws 2
    exit 0
fi

section "chat: closed loop, 500 customers, 5 agents (throughput; target >= 20,000 msg/s)"
$bench --customers 500 --agents 5 --duration 10 --window 8
$bench --customers 500 --agents 5 --duration 10 --window 16
section "chat: open loop 5,000 msg/s, 500 customers, 5 agents (latency; target p99 < 50 ms)"
$bench --customers 500 --agents 5 --duration 10 --rate 5000
section "chat: open loop 2,500 msg/s (latency below saturation on a small machine)"
$bench --customers 500 --agents 5 --duration 10 --rate 2500
section "peer (Python websockets + sqlite3, the original design's stack): closed loop, 500 customers, 5 agents"
$bench --customers 500 --agents 5 --duration 10 --window 8 --peer python
section "peer: open loop 5,000 msg/s"
$bench --customers 500 --agents 5 --duration 10 --rate 5000 --peer python
section "idle connections (target < 30 KiB each)"
$bench --idle 10000
section "peer: idle connections"
$bench --idle 10000 --peer python
section "chat on PostgreSQL: one node and two nodes, beside SQLite (aim >= 8,000 stored/s, p99 < 100 ms at 2,000 msg/s)"
Benchmarks/postgres.sh
section "search: one million messages (target p95 < 50 ms)"
Benchmarks/search.sh
section "thumbnails"
Benchmarks/thumbnails.sh
section "media ingest and sniffing"
Benchmarks/media.sh
section "media on an object store (1 GiB, moto; target < 64 MiB extra memory)"
Benchmarks/media-s3.sh
section "image metadata removal (target < 2 ms for a 5 MB JPEG)"
Benchmarks/privacy.sh
section "media maintenance"
Benchmarks/maintenance.sh
section "sixel previews"
Benchmarks/sixel.sh
section "console: redraw a screen with three sixel previews (target < 30 ms)"
$bench --redraw /usr/share/backgrounds/mate/nature/{Garden,LadyBird,Dune}.jpg --redraws 200
