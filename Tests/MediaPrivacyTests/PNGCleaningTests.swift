import Foundation
import ImageFixtures
@testable import MediaPrivacy
import Testing
import Thumbnailer

/// Chunk types of a PNG, read independently of the cleaner.
private func chunkTypes(_ png: [UInt8]) -> [String] {
    var types: [String] = []
    var at = 8
    while at + 12 <= png.count {
        let length = Int(png[at]) << 24 | Int(png[at + 1]) << 16 | Int(png[at + 2]) << 8 | Int(png[at + 3])
        types.append(String(decoding: png[(at + 4)..<(at + 8)], as: UTF8.self))
        at += 12 + length
    }
    return types
}

@Suite struct PNGCleaningTests {
    static func taggedPNG() throws -> [UInt8] {
        let base = try Corpus.bytes("pngsuite/png/basn2c08.png")
        let exif = ExifBuilder.camera(orientation: 1).tiff()
        return PNGBuilder.inserting([
            PNGBuilder.chunk("eXIf", exif),
            PNGBuilder.chunk("tEXt", Array("Author\0Jane Customer".utf8)),
            PNGBuilder.chunk("iTXt", Array("GPSLatitude\0\0\0\0\048.85".utf8)),
            PNGBuilder.chunk("tIME", [0x07, 0xEA, 11, 30, 9, 41, 0]),
            PNGBuilder.chunk("gAMA", [0, 0, 0xB1, 0x8F]),
            PNGBuilder.chunk("pHYs", [0, 0, 0x0B, 0x13, 0, 0, 0x0B, 0x13, 1]),
            PNGBuilder.chunk("prVt", Array("SERIAL-BODY-123456".utf8)),
        ], late: [PNGBuilder.chunk("zTXt", Array("Comment\0\0x".utf8))], into: base) + Array("trailing SERIAL-LENS".utf8)
    }

    @Test func dropsExifTextTimeAndPrivateChunks() throws {
        let png = try Self.taggedPNG()
        let (cleaned, plan) = try MetadataCleaner.clean(png, format: .png)
        for text in ["Jane Customer", "GPSLatitude", "SERIAL-BODY", "SERIAL-LENS", "PhoneMaker", "Comment"] {
            #expect(!cleaned.contains(text), "\(text) survived")
        }
        #expect(chunkTypes(cleaned) == ["IHDR", "gAMA", "pHYs"] + chunkTypes(try Corpus.bytes("pngsuite/png/basn2c08.png")).dropFirst())
        #expect(Set(plan.removed) == [.pngExif, .pngText, .pngTime, .pngOtherChunk, .trailingData])
        let thumbnailer = Thumbnailer()
        #expect(try thumbnailer.decode(cleaned).pixels == thumbnailer.decode(png).pixels)
    }

    @Test func everyPngSuiteImageCleansToTheSamePixels() throws {
        let directory = Corpus.root + "/pngsuite/png"
        let names = try #require(try? FileManager.default.contentsOfDirectory(atPath: directory),
                                 "PngSuite missing at \(directory) (see ../shared/corpus/README.md)").filter { $0.hasSuffix(".png") }.sorted()
        let thumbnailer = Thumbnailer()
        var cleanedCount = 0
        for name in names {
            let png = try Corpus.bytes("pngsuite/png/" + name)
            if name.hasPrefix("x") {
                // Corrupt files: a typed error or a plan, never a trap.
                _ = try? MetadataCleaner.clean(png, format: .png)
                continue
            }
            let (cleaned, plan) = try MetadataCleaner.clean(png, format: .png)
            if !plan.isUnchanged { cleanedCount += 1 }
            #expect(!chunkTypes(cleaned).contains { ["eXIf", "tEXt", "zTXt", "iTXt", "tIME"].contains($0) }, "\(name)")
            guard let before = try? thumbnailer.decode(png) else { continue }
            #expect(try thumbnailer.decode(cleaned).pixels == before.pixels, "\(name)")
        }
        #expect(cleanedCount >= 5, "the suite has text, time and eXIf chunks (ct*, cm*, exif2c08)")
    }

    @Test func apngChunksStay() throws {
        let base = try Corpus.bytes("pngsuite/png/basn2c08.png")
        let actl = PNGBuilder.chunk("acTL", [0, 0, 0, 1, 0, 0, 0, 0])
        let fctl = PNGBuilder.chunk("fcTL", [UInt8](repeating: 0, count: 26))
        let png = PNGBuilder.inserting([actl, fctl, PNGBuilder.chunk("tEXt", Array("k\0v".utf8))], into: base)
        let (cleaned, _) = try MetadataCleaner.clean(png, format: .png)
        #expect(cleaned == PNGBuilder.inserting([actl, fctl], into: base))
    }

    @Test func hostileChunksAreTypedErrors() throws {
        let base = try Corpus.bytes("pngsuite/png/basn2c08.png")
        let ihdrEnd = 33
        // A length past the end.
        let huge = Array(base[..<ihdrEnd]) + [0x7F, 0xFF, 0xFF, 0xF0] + Array("tEXt".utf8) + [0, 0, 0, 0]
        #expect(throws: MetadataCleaningError.truncated(what: "PNG chunk", offset: ihdrEnd)) { try MetadataCleaner.clean(huge, format: .png) }
        // A length over 2^31 - 1.
        let negative = Array(base[..<ihdrEnd]) + [0xFF, 0xFF, 0xFF, 0xFF] + Array("tEXt".utf8) + [0, 0, 0, 0]
        #expect(throws: MetadataCleaningError.self) { try MetadataCleaner.clean(negative, format: .png) }
        // An unknown critical chunk.
        let critical = PNGBuilder.inserting([PNGBuilder.chunk("CgBI", [0, 0, 0, 0])], into: base)
        #expect(throws: MetadataCleaningError.unknownCriticalChunk("CgBI")) { try MetadataCleaner.clean(critical, format: .png) }
        // Not a PNG; IHDR not first; a chunk type that is not letters.
        #expect(throws: MetadataCleaningError.notFormat(expected: "PNG")) { try MetadataCleaner.clean(Array("GIF89a".utf8), format: .png) }
        let late = Array(base[..<8]) + PNGBuilder.chunk("gAMA", [0, 0, 0xB1, 0x8F]) + Array(base[8...])
        #expect(throws: MetadataCleaningError.malformed(what: "PNG without IHDR first", offset: 8)) { try MetadataCleaner.clean(late, format: .png) }
        var badType = base
        badType[ihdrEnd + 4] = 0x20
        #expect(throws: MetadataCleaningError.malformed(what: "PNG chunk type", offset: ihdrEnd + 4)) { try MetadataCleaner.clean(badType, format: .png) }
        // Every prefix: a plan or a typed error.
        let tagged = try Self.taggedPNG()
        for cut in 0..<tagged.count { _ = try? MetadataCleaner.clean(Array(tagged[..<cut]), format: .png) }
    }
}
