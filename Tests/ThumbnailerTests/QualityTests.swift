import Foundation
import ImageBuffer
import Testing
@testable import Thumbnailer

/// fit320 of real photographs against an independent reference: ImageMagick's full-resolution decode and its
/// own Lanczos resize to the same size.
@Suite struct QualityTests {
    static let photos = [
        "abstract/Elephants_5640x3172.jpg", // 18 MP progressive with EXIF
        "nature/Aqua.jpg", "nature/Blinds.jpg", "nature/Dune.jpg", "nature/FreshFlower.jpg", "nature/Garden.jpg",
        "nature/GreenMeadow.jpg", "nature/LadyBird.jpg", "nature/RainDrops.jpg", "nature/Storm.jpg",
        "nature/TwoWings.jpg", "nature/Wood.jpg", "nature/YellowFlower.jpg",
    ]

    func check(path: String, label: String) async throws {
        let convert = try requireTool(["/usr/bin/convert", "/usr/bin/magick"], install: "apt-get install -y imagemagick")
        let bytes = try readFile(path, what: "mate-backgrounds photograph (apt-get install -y mate-backgrounds)")
        let thumbnailer = Thumbnailer()
        let ours = try thumbnailer.thumbnailImage(from: bytes, spec: .fit320)
        #expect(max(ours.width, ours.height) == 320)
        let referencePPM = try await run(convert, [path, "-auto-orient", "-resize", "\(ours.width)x\(ours.height)!",
                                             "-depth", "8", "ppm:-"])
        let reference = try #require(parsePPM(referencePPM), "\(label): unreadable ImageMagick output")
        try #require(reference.width == ours.width && reference.height == ours.height)
        let resized = psnr(ours, reference)
        #expect(resized >= 32, "\(label): resized pixels PSNR \(resized) dB")
        // The encoded thumbnail (JPEG q82, 4:2:0) loses more on textured photos; this only catches gross encoder
        // mistakes (channel order, wrong size).
        let thumb = try thumbnailer.makeThumbnail(from: bytes, spec: .fit320)
        let decoded = try thumbnailer.decode(thumb.bytes)
        try #require(decoded.width == ours.width && decoded.height == ours.height)
        let encoded = psnr(decoded, reference)
        #expect(encoded >= 25, "\(label): encoded thumbnail PSNR \(encoded) dB")
    }

    @Test(arguments: photos)
    func photoFit320MatchesReferenceResize(photo: String) async throws {
        try await check(path: "\(Corpus.photoDirectory)/\(photo)", label: photo)
    }

    /// The PNG path: a photo converted to PNG by ImageMagick.
    @Test func pngPhotoFit320() async throws {
        let convert = try requireTool(["/usr/bin/convert", "/usr/bin/magick"], install: "apt-get install -y imagemagick")
        let source = "\(Corpus.photoDirectory)/nature/Storm.jpg"
        _ = try readFile(source, what: "mate-backgrounds photograph (apt-get install -y mate-backgrounds)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("thumb-quality-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let png = dir.appendingPathComponent("storm.png").path
        _ = try await run(convert, [source, png])
        try await check(path: png, label: "Storm.png")
    }
}
