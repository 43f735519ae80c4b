import Foundation
import ImageFixtures
import ImageBuffer
@testable import MediaPrivacy
import Testing
import Thumbnailer

/// The markers of a JPEG's segments up to SOS, and what follows its EOI; read independently of the cleaner.
private func headerSegments(_ jpeg: [UInt8]) -> [(marker: UInt8, payload: [UInt8])] {
    var segments: [(UInt8, [UInt8])] = []
    var at = 2
    while at + 4 <= jpeg.count, jpeg[at] == 0xFF {
        let marker = jpeg[at + 1]
        let length = Int(jpeg[at + 2]) << 8 | Int(jpeg[at + 3])
        segments.append((marker, Array(jpeg[(at + 4)..<(at + 2 + length)])))
        if marker == 0xDA { break }
        at += 2 + length
    }
    return segments
}

private let privateStrings = ["PhoneMaker", "Phone 15 Pro", "Firmware", "MAKERNOTE-SECRET", "Jane Customer", "SERIAL-BODY",
                              "SERIAL-LENS", "SERIAL-XMP", "GPSLatitude", "2026:11:30", "Photoshop 3.0", "a comment with an address"]

@Suite struct JPEGCleaningTests {
    /// A JPEG as a phone sends it: EXIF with GPS, maker note, serials and owner; XMP; IPTC; a comment; an ICC
    /// profile; and a second image after EOI with its own EXIF.
    static func phonePhoto(orientation: Int?, littleEndian: Bool = true) throws -> [UInt8] {
        let base = try Corpus.bytes("jpeg/testorig.jpg")
        let appended = JPEGBuilder.inserting([JPEGBuilder.exifSegment(ExifBuilder.camera(orientation: nil).tiff())], into: base)
        return JPEGBuilder.inserting([
            JPEGBuilder.exifSegment(ExifBuilder.camera(orientation: orientation, littleEndian: littleEndian).tiff()),
            JPEGBuilder.xmpSegment(),
            JPEGBuilder.iccSegment(),
            JPEGBuilder.segment(0xED, Array("Photoshop 3.0\0".utf8) + Array("8BIM IPTC city".utf8)),
            JPEGBuilder.segment(0xFE, Array("a comment with an address".utf8)),
            JPEGBuilder.segment(0xE2, Array("MPF\0".utf8) + [0, 0, 0, 0]),
        ], into: base, trailer: appended)
    }

    @Test(arguments: [(1, true), (6, true), (8, false), (3, false)])
    func removesLocationAndDeviceDataKeepingPixelsAndOrientation(orientation: Int, littleEndian: Bool) throws {
        let photo = try Self.phonePhoto(orientation: orientation, littleEndian: littleEndian)
        #expect(photo.contains("SERIAL-BODY"), "the fixture carries the metadata")
        let (cleaned, plan) = try MetadataCleaner.clean(photo, format: .jpeg)

        for text in privateStrings { #expect(!cleaned.contains(text), "\(text) survived") }
        #expect(Set(plan.removed) == [.exif, .location, .xmp, .iptc, .comment, .applicationSegment, .trailingData])
        #expect(plan.orientation == orientation)

        let segments = headerSegments(cleaned)
        let exif = segments.filter { $0.marker == 0xE1 }
        if orientation == 1 {
            #expect(exif.isEmpty, "orientation 1 needs no EXIF")
        } else {
            #expect(exif.count == 1)
            #expect(exif.first?.payload.count == 32, "only the orientation entry")
        }
        // The ICC profile and JFIF stay byte for byte; the coding segments and scan are the original's.
        #expect(segments.contains { $0.marker == 0xE2 && $0.payload == Array(JPEGBuilder.iccSegment().dropFirst(4)) })
        #expect(segments.first?.marker == 0xE0)
        #expect(!segments.contains { $0.marker == 0xE2 && $0.payload.starts(with: Array("MPF".utf8)) })
        let base = try Corpus.bytes("jpeg/testorig.jpg")
        #expect(Array(cleaned.suffix(from: cleaned.count - (base.count - 20))) == Array(base[20...]),
                "everything after the base's APP0 (tables, frame, scan, EOI) is copied byte for byte, trailer dropped")

        // Shown the same: pixels and orientation as decoded by the project's thumbnailer.
        let thumbnailer = Thumbnailer()
        let before = try thumbnailer.decode(photo), after = try thumbnailer.decode(cleaned)
        #expect(before.width == after.width && before.height == after.height)
        #expect(before.pixels == after.pixels)
        #expect(try thumbnailer.probe(cleaned).orientation == orientation)
    }

    @Test func aFileWithoutMetadataIsLeftAsIs() throws {
        let base = try Corpus.bytes("jpeg/testorig.jpg")
        let (cleaned, plan) = try MetadataCleaner.clean(base, format: .jpeg)
        #expect(plan.isUnchanged)
        #expect(plan.removed.isEmpty)
        #expect(cleaned == base)
    }

    @Test func arithmeticAndProgressiveFilesKeepTheirScans() throws {
        for name in ["jpeg/testimgari.jpg", "jpeg/testimgint.jpg"] {
            let base = try Corpus.bytes(name)
            let photo = JPEGBuilder.inserting([JPEGBuilder.exifSegment(ExifBuilder.camera(orientation: 6).tiff())], into: base)
            let (cleaned, plan) = try MetadataCleaner.clean(photo, format: .jpeg)
            #expect(plan.orientation == 6)
            #expect(!cleaned.contains("SERIAL-BODY"))
            #expect(cleaned.count == base.count + 36, "\(name): the base plus a 36-byte orientation-only APP1")
        }
    }

    @Test func segmentsBetweenScansAreFilteredToo() throws {
        // A comment and an XMP segment between two scans (allowed by the format) go; the scans stay.
        let base = try Corpus.bytes("jpeg/testorig.jpg")
        let eoi = base.count - 2
        let secondScanLike = JPEGBuilder.segment(0xFE, Array("a comment with an address".utf8)) + JPEGBuilder.xmpSegment()
        let photo = Array(base[..<eoi]) + secondScanLike + [0xFF, 0xD9]
        let (cleaned, plan) = try MetadataCleaner.clean(photo, format: .jpeg)
        #expect(cleaned == base)
        #expect(Set(plan.removed) == [.comment, .xmp])
    }

    // MARK: Hostile EXIF

    @Test func anIFDLoopEndsAndIsCleaned() throws {
        var exif = ExifBuilder.camera(orientation: 6)
        exif.nextIFD = 8 // IFD0's next link points at IFD0 itself
        let base = try Corpus.bytes("jpeg/testorig.jpg")
        let (cleaned, plan) = try MetadataCleaner.clean(JPEGBuilder.inserting([JPEGBuilder.exifSegment(exif.tiff())], into: base),
                                                        format: .jpeg)
        #expect(plan.orientation == 6)
        #expect(!cleaned.contains("SERIAL"))
    }

    @Test func anIFDOffsetPastTheEndIsRefused() throws {
        var tiff = ExifBuilder.camera(orientation: 6).tiff()
        tiff[4] = 0xF0; tiff[5] = 0xFF; tiff[6] = 0xFF; tiff[7] = 0x7F // IFD0 offset, little-endian
        try expectRefused(tiff) { if case .malformedExif(let reason) = $0 { reason.contains("past the end") } else { false } }
    }

    @Test func aHugeEntryCountIsRefused() throws {
        var tiff = ExifBuilder.camera(orientation: 6).tiff()
        tiff[8] = 0xFF; tiff[9] = 0xFF // IFD0 entry count 65535
        try expectRefused(tiff) { if case .malformedExif(let reason) = $0 { reason.contains("65535 entries") } else { false } }
    }

    @Test func shortOrUnknownTIFFHeadersAreRefused() throws {
        try expectRefused([0x49, 0x49, 0x2A]) { if case .malformedExif = $0 { true } else { false } }
        try expectRefused(Array("XX\0*\0\0\0\u{8}".utf8)) { if case .malformedExif = $0 { true } else { false } }
    }

    private func expectRefused(_ tiff: [UInt8], _ matches: (MetadataCleaningError) -> Bool,
                               sourceLocation: SourceLocation = #_sourceLocation) throws {
        let photo = JPEGBuilder.inserting([JPEGBuilder.exifSegment(tiff)], into: try Corpus.bytes("jpeg/testorig.jpg"))
        do {
            _ = try MetadataCleaner.clean(photo, format: .jpeg)
            Issue.record("hostile EXIF was accepted", sourceLocation: sourceLocation)
        } catch {
            #expect(matches(error), "unexpected error \(error)", sourceLocation: sourceLocation)
            #expect(error.description.contains("cannot be cleaned"), sourceLocation: sourceLocation)
        }
    }

    // MARK: Hostile structure

    @Test func truncatedAndMalformedSegmentsAreTypedErrors() throws {
        let photo = try Self.phonePhoto(orientation: 6)
        // Cut inside each header segment: every prefix either cleans or fails with a typed error, never traps.
        let firstScan = try #require(photo.indices.first { photo[$0] == 0xFF && photo[$0 + 1] == 0xDA })
        var refused = 0
        for cut in stride(from: 0, through: firstScan, by: 1) {
            do {
                _ = try MetadataCleaner.clean(Array(photo[..<cut]), format: .jpeg)
            } catch {
                refused += 1
            }
        }
        #expect(refused > 0)
        // Specific cases.
        #expect(throws: MetadataCleaningError.notFormat(expected: "JPEG")) { try MetadataCleaner.clean([0xFF, 0xD8], format: .jpeg) }
        #expect(throws: MetadataCleaningError.truncated(what: "JPEG segment 0xE1", offset: 20)) {
            try MetadataCleaner.clean(Array(photo[..<100]), format: .jpeg)
        }
        #expect(throws: MetadataCleaningError.malformed(what: "JPEG segment length 1", offset: 22)) {
            try MetadataCleaner.clean(Array(photo[..<20]) + [0xFF, 0xE1, 0x00, 0x01] + Array(photo[20...]), format: .jpeg)
        }
        #expect(throws: MetadataCleaningError.malformed(what: "JPEG marker", offset: 20)) {
            try MetadataCleaner.clean(Array(photo[..<20]) + [0x00] + Array(photo[20...]), format: .jpeg)
        }
    }

    @Test func thousandsOfAlternatingSegmentsAreRefused() throws {
        let base = try Corpus.bytes("jpeg/testorig.jpg")
        let comment = JPEGBuilder.segment(0xFE, [0x41])
        let dri = JPEGBuilder.segment(0xDD, [0, 0])
        let photo = JPEGBuilder.inserting(Array(repeating: comment + dri, count: CleaningPlan.maxPieces), into: base)
        #expect(throws: MetadataCleaningError.tooManySegments(limit: CleaningPlan.maxPieces)) {
            try MetadataCleaner.clean(photo, format: .jpeg)
        }
    }

    @Test func aFileCutInsideItsScanKeepsWhatItHas() throws {
        let base = try Corpus.bytes("jpeg/testorig.jpg")
        let photo = JPEGBuilder.inserting([JPEGBuilder.exifSegment(ExifBuilder.camera(orientation: 3).tiff())], into: base)
        let (cleaned, plan) = try MetadataCleaner.clean(Array(photo[..<(photo.count - 200)]), format: .jpeg)
        #expect(!cleaned.contains("SERIAL"))
        #expect(plan.orientation == 3)
        #expect(Array(cleaned.suffix(base.count - 220)) == Array(base[20..<(base.count - 200)]), "the scan up to the cut")
    }

    @Test func realPhotosCleanToTheSamePixels() throws {
        // Debian's mate-backgrounds camera photos, when installed (see ../shared/corpus/README.md).
        let directory = "/usr/share/backgrounds/mate/nature"
        let names = ["Aqua.jpg", "FreshFlower.jpg", "GreenMeadow.jpg"]
        let thumbnailer = Thumbnailer()
        for name in names {
            guard let contents = FileManager.default.contents(atPath: directory + "/" + name) else { continue }
            let data = [UInt8](contents)
            let (cleaned, plan) = try MetadataCleaner.clean(data, format: .jpeg)
            #expect(try thumbnailer.decode(cleaned, targetLongestSide: 256).pixels
                    == thumbnailer.decode(data, targetLongestSide: 256).pixels, "\(name)")
            #expect(try thumbnailer.probe(cleaned).orientation == thumbnailer.probe(data).orientation)
            #expect(plan.outputSize == cleaned.count)
        }
    }
}
