#!/usr/bin/env bash
# Sixel encoder figures: render time of a 320 px preview (release build), and bytes and PSNR against libsixel's
# img2sixel on the same photographs at the same pixel size, both decoded by sixel2png.
#
# Needs: swift, libsixel-bin (img2sixel, sixel2png), imagemagick (convert), mate-backgrounds (the photographs).
# Builds a throwaway package (symlinks to Sources/ImageBuffer and Sources/TerminalGraphics plus the small driver
# below) so it neither touches nor needs the main package's dependencies. Reuses $TG_BENCH_DIR between runs.
#
# usage: Benchmarks/sixel.sh [photo.jpg ...]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${TG_BENCH_DIR:-${TMPDIR:-/tmp}/tg-sixel-bench}"
runs="${RUNS:-30}"
photos=("$@")
if [ ${#photos[@]} -eq 0 ]; then
    photos=(/usr/share/backgrounds/mate/nature/{Garden,LadyBird,Dune,TwoWings,GreenMeadow,RainDrops,Aqua}.jpg
            /usr/share/backgrounds/mate/abstract/Elephants.jpg)
fi
for tool in swift img2sixel sixel2png convert; do
    command -v "$tool" >/dev/null || { echo "missing $tool (libsixel-bin, imagemagick)" >&2; exit 1; }
done

mkdir -p "$work/Sources/sixel-bench" "$work/out"
ln -sfn "$root/Sources/ImageBuffer" "$work/Sources/ImageBuffer"
ln -sfn "$root/Sources/TerminalGraphics" "$work/Sources/TerminalGraphics"
cat > "$work/Package.swift" <<'EOF'
// swift-tools-version:6.0
import PackageDescription
let package = Package(
    name: "sixel-bench",
    targets: [
        .target(name: "ImageBuffer"),
        .target(name: "TerminalGraphics", dependencies: ["ImageBuffer"]),
        .executableTarget(name: "sixel-bench", dependencies: ["TerminalGraphics", "ImageBuffer"]),
    ],
    swiftLanguageModes: [.v6]
)
EOF
cat > "$work/Sources/sixel-bench/main.swift" <<'EOF'
// sixel-bench encode IN.ppm OUT.six RUNS  → "bytes encode_median_ms encode_min_ms preview_median_ms preview_min_ms"
// sixel-bench psnr A.ppm B.ppm           → PSNR in dB
import Foundation
import ImageBuffer
import TerminalGraphics

func readPPM(_ path: String) -> RGBAImage? {
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    let b = [UInt8](data)
    var pos = 2
    func token() -> Int? {
        while pos < b.count, [0x20, 0x0A, 0x0D, 0x09].contains(b[pos]) { pos += 1 }
        var v: Int?
        while pos < b.count, (0x30...0x39).contains(b[pos]) { v = (v ?? 0) * 10 + Int(b[pos] - 0x30); pos += 1 }
        return v
    }
    guard b.count > 2, b[0] == 0x50, b[1] == 0x36, let w = token(), let h = token(), token() == 255 else { return nil }
    pos += 1
    guard b.count >= pos + w * h * 3 else { return nil }
    var px = [UInt8](repeating: 255, count: w * h * 4)
    for i in 0..<(w * h) { for c in 0..<3 { px[i * 4 + c] = b[pos + i * 3 + c] } }
    return RGBAImage(width: w, height: h, pixels: px)
}

func milliseconds(_ body: () -> Void) -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
}

let args = CommandLine.arguments
if args.count == 5, args[1] == "encode", let image = readPPM(args[2]), let runs = Int(args[4]) {
    let encoder = SixelEncoder()
    var bytes: [UInt8] = []
    let encode = (0..<runs).map { _ in milliseconds { bytes = encoder.encode(image) } }.sorted()
    // The whole preview path as the client runs it: layout, resize, encode, framing (a terminal big enough that
    // the 320 px picture is not scaled down further).
    let caps = TerminalCapabilities(sixel: true, cellWidth: 10, cellHeight: 20, cellSizeKnown: true,
                                    columns: 200, rows: 100)
    let renderer = PreviewRenderer()
    let preview = (0..<runs).map { _ in
        milliseconds { _ = renderer.render(image: image, mode: .auto, capabilities: caps, maxColumns: 200) }
    }.sorted()
    _ = FileManager.default.createFile(atPath: args[3], contents: Data(bytes))
    print(String(format: "%d %.2f %.2f %.2f %.2f", bytes.count, encode[runs / 2], encode[0], preview[runs / 2],
                 preview[0]))
} else if args.count == 4, args[1] == "psnr", let a = readPPM(args[2]), let b = readPPM(args[3]),
          a.width == b.width, a.height == b.height {
    var sum = 0.0
    for i in 0..<(a.width * a.height) {
        for c in 0..<3 {
            let d = Double(a.pixels[i * 4 + c]) - Double(b.pixels[i * 4 + c])
            sum += d * d
        }
    }
    let mse = sum / Double(a.width * a.height * 3)
    print(mse == 0 ? "inf" : String(format: "%.2f", 10 * log10(255 * 255 / mse)))
} else {
    FileHandle.standardError.write(Data("usage: sixel-bench encode IN.ppm OUT.six RUNS | psnr A.ppm B.ppm\n".utf8))
    exit(2)
}
EOF

echo "building (${CONFIG:-release}) in $work ..." >&2
config="${CONFIG:-release}"
swift build -c "$config" --package-path "$work" >&2
bench="$work/.build/$config/sixel-bench"
out="$work/out"

printf "%-12s %7s | %8s %7s | %8s %7s | %9s %9s | %9s %9s\n" photo size \
    "ours B" "PSNR" "img2six B" "PSNR" "encode ms" "(min)" "preview ms" "(min)"
for photo in "${photos[@]}"; do
    [ -f "$photo" ] || { echo "missing $photo (apt-get install mate-backgrounds)" >&2; exit 1; }
    name="$(basename "${photo%.*}")"
    convert "$photo" -resize 320x -strip -depth 8 "$out/$name.ppm"
    read -r bytes enc_med enc_min pre_med pre_min < <("$bench" encode "$out/$name.ppm" "$out/$name.ours.six" "$runs")
    img2sixel "$out/$name.ppm" > "$out/$name.ref.six"
    for kind in ours ref; do
        sixel2png -i "$out/$name.$kind.six" -o "$out/$name.$kind.png"
        convert "$out/$name.$kind.png" -strip -depth 8 ppm:- > "$out/$name.$kind.ppm"
    done
    size="$(head -c 20 "$out/$name.ppm" | sed -n 2p | tr ' ' x)"
    printf "%-12s %7s | %8d %7s | %8d %7s | %9s %9s | %9s %9s\n" "$name" "$size" \
        "$bytes" "$("$bench" psnr "$out/$name.ppm" "$out/$name.ours.ppm")" \
        "$(stat -c %s "$out/$name.ref.six")" "$("$bench" psnr "$out/$name.ppm" "$out/$name.ref.ppm")" \
        "$enc_med" "$enc_min" "$pre_med" "$pre_min"
done
