import ChatClient
import ChatProtocol
@_spi(Testing) import ChatServerFixture
@_spi(Testing) import ChatStore
import ChatStorePostgres
import Foundation
import ImageFixtures
import Logging
import Synchronization
import MediaMaintenance
import MediaStore
import TestProcesses
import Testing
import Thumbnailer

/// `chat-admin media strip-metadata` on blobs a server stored with `--keep-image-metadata`, through the built
/// executable, with the server running: SQLite and the media directory, and PostgreSQL with a bucket.
@Suite("chat-admin media strip-metadata", .serialized, .timeLimit(.minutes(4)), .stopsServers)
struct StripMetadataTests {
    static let day: Int64 = 86_400_000

    /// A PNG with EXIF (GPS, serials) and an author in a text chunk, and the same PNG without them.
    static func privatePNG(_ name: String = "pngsuite/png/basn2c08.png") throws -> (png: [UInt8], clean: [UInt8]) {
        let base = try Corpus.bytes(name)
        let png = PNGBuilder.inserting([PNGBuilder.chunk("eXIf", ExifBuilder.camera(orientation: 1).tiff()),
                                        PNGBuilder.chunk("tEXt", Array("Author\0Jane Customer".utf8))], into: base)
        return (png, base)
    }

    static func report(_ result: AdminResult) throws -> StripReport {
        guard result.status == 0 else { throw TestFailure("strip-metadata exited \(result.status): \(result.stderr)") }
        return try JSONDecoder().decode(StripReport.self, from: Data(result.stdout.utf8))
    }

    @Test("old JPEG and PNG blobs: cleaned into new blobs, attachments moved, old bytes gone; dry run and a second run change nothing")
    func localDirectory() async throws {
        let server = try await MediaServer.start { $0.media.imageMetadata = .keep }
        let aliceToken = try await server.makeToken("alice", role: .customer)
        let agentToken = try await server.makeToken("sam", role: .agent)
        let (alice, _) = try await server.connect("alice", token: aliceToken, lastSeq: 0)
        let photo = try MetadataRemovalTests.phonePhoto()
        let (png, cleanPNG) = try Self.privatePNG()
        let hostile = try MetadataRemovalTests.hostilePhoto()
        let (recentPNG, _) = try Self.privatePNG("pngsuite/png/basn0g08.png")
        let jpegDone = try await upload(Data(photo), as: "receipt.jpg", by: alice)
        try await send(jpegDone, by: alice, id: "j1")
        let pngDone = try await upload(Data(png), as: "screen.png", by: alice)
        try await send(pngDone, by: alice, id: "p1")
        let hostileDone = try await upload(Data(hostile), as: "odd.jpg", by: alice)
        try await send(hostileDone, by: alice, id: "h1")
        #expect(jpegDone.attachment.sha256 == sha256Hex(photo) && pngDone.attachment.sha256 == sha256Hex(png), "stored as sent")
        // Referenced a day ago, past the grace period; the last one is referenced now and must be left alone.
        try await server.sqlite().execute("UPDATE blobs SET last_referenced_at = last_referenced_at - ?", Self.day)
        let recentDone = try await upload(Data(recentPNG), as: "now.png", by: alice)
        try await send(recentDone, by: alice, id: "r1")
        let old = [jpegDone.attachment.sha256, pngDone.attachment.sha256]
        let layout = MediaLayout(directory: server.mediaDirectory)
        func strip(_ arguments: [String] = []) async throws -> AdminResult {
            try await runAdmin(["media", "strip-metadata", "--data-dir", server.directory] + arguments)
        }

        let filesBefore = server.files(under: "blobs") + server.files(under: "thumbs")
        let dry = try Self.report(try await strip(["--dry-run", "--json"]))
        #expect(dry.dryRun)
        #expect(Set(dry.cleaned.map(\.hash)) == Set(old))
        #expect(dry.cleaned.allSatisfy { $0.newSize < $0.size && $0.attachments == 1 && !$0.removed.isEmpty })
        #expect(dry.bytesBefore == Int64(photo.count + png.count))
        #expect(dry.uncleanable.map(\.hash) == [hostileDone.attachment.sha256])
        #expect(dry.skippedRecent == 1)
        #expect(server.files(under: "blobs") + server.files(under: "thumbs") == filesBefore, "a dry run changes no file")
        #expect(try await server.count("SELECT count(*) FROM blobs WHERE metadata_removed IS NOT NULL OR state <> 'present'") == 0)
        let human = try await strip(["--dry-run"])
        #expect(human.status == 0 && human.stdout.contains("would clean 2 blobs") && human.stdout.contains("nothing changed"), "\(human.stdout)")
        #expect(human.stdout.contains("cannot be cleaned safely") && human.stdout.contains(hostileDone.attachment.sha256))

        let done = try Self.report(try await strip(["--json"]))
        #expect(!done.dryRun && done.cleaned.count == 2)
        #expect(done.cleaned.allSatisfy { $0.oldRemoved && $0.attachments == 1 })
        #expect(done.cleaned.map(\.newHash) == dry.cleaned.map(\.newHash), "the dry run named the hashes the run made")
        let newJPEG = try #require(done.cleaned.first { $0.hash == jpegDone.attachment.sha256 }?.newHash)
        let newPNG = try #require(done.cleaned.first { $0.hash == pngDone.attachment.sha256 }?.newHash)
        #expect(newPNG == sha256Hex(cleanPNG), "the PNG without the two chunks is the corpus file")

        // The messages now carry the new blobs, flagged clean, with thumbnails; the old bytes and thumbnails are gone.
        let (agent, _) = try await server.connect("sam", token: agentToken)
        let attachments = try await fetchHistory(agent, customer: "alice").flatMap { $0.attachments ?? [] }
        #expect(attachments.map(\.sha256) == [newJPEG, newPNG, hostileDone.attachment.sha256, recentDone.attachment.sha256])
        #expect(attachments.prefix(2).allSatisfy { $0.metadataRemoved == true && $0.expired == nil && !$0.thumbnails.isEmpty })
        #expect(attachments[0].width == 149 && attachments[0].height == 227, "orientation 6 kept")
        for hash in old {
            #expect(!FileManager.default.fileExists(atPath: layout.blobPath(hash)))
            #expect(server.files(under: "thumbs").allSatisfy { !$0.contains(hash) })
            #expect(try await server.request("GET", "/media/\(hash)", token: agentToken).status == 404)
        }
        let download = try await server.request("GET", "/media/\(newJPEG)", token: agentToken)
        #expect(download.status == 200)
        let stored = [UInt8](download.body)
        #expect(sha256Hex(stored) == newJPEG)
        for text in MetadataRemovalTests.privateStrings { #expect(!stored.contains(text), "\(text) is still stored") }
        let thumbnailer = Thumbnailer()
        #expect(try thumbnailer.decode(stored).pixels == thumbnailer.decode(photo).pixels)
        #expect(try thumbnailer.probe(stored).orientation == 6)
        #expect(try await server.request("GET", "/media/\(newPNG)", token: aliceToken).body == Data(cleanPNG))
        #expect(try await server.request("GET", "/media/\(newJPEG)/thumbnail/fit320", token: aliceToken).status == 200)
        // The uploader can still attach the upload by its id: it now gives the clean blob.
        try alice.send(.send(Send(clientId: "again", text: "again", attachments: [AttachmentReference(uploadId: jpegDone.uploadId)])))
        let again = try await agent.receive(timeout: frameWait) { if case .message(let message) = $0 { message } else { nil } }
        #expect(again.attachments?.first?.sha256 == newJPEG)

        // A second run changes nothing (the uncleanable image is reported again, and left as stored).
        let filesAfter = server.files(under: "blobs") + server.files(under: "thumbs")
        let second = try Self.report(try await strip(["--json"]))
        #expect(second.cleaned.isEmpty && second.alreadyClean.isEmpty && second.skipped.isEmpty)
        #expect(second.uncleanable.map(\.hash) == [hostileDone.attachment.sha256])
        #expect(server.files(under: "blobs") + server.files(under: "thumbs") == filesAfter)
        #expect(try await server.count("SELECT count(*) FROM blobs WHERE state = 'pruned'") == 2)
        #expect(try await server.count("SELECT count(*) FROM uploads WHERE state = 'receiving'") == 0)
        #expect(server.files(under: "tmp").isEmpty, "no copy is left in the spool")
        alice.close()
        agent.close()
        await server.stop()
    }

    @Test("an image that had nothing to remove is recorded as clean; a new hash already present is reused, not put again")
    func alreadyCleanAndExisting() async throws {
        let server = try await MediaServer.start { $0.media.imageMetadata = .keep }
        let token = try await server.makeToken("alice", role: .customer)
        let (alice, _) = try await server.connect("alice", token: token, lastSeq: 0)
        let (png, cleanPNG) = try Self.privatePNG()
        // The clean bytes were uploaded too (by a server that removed metadata, say): the strip reuses that blob.
        let cleanDone = try await upload(Data(cleanPNG), as: "clean.png", by: alice)
        let pngDone = try await upload(Data(png), as: "screen.png", by: alice)
        try await send(pngDone, by: alice, id: "p1")
        try await server.sqlite().execute("UPDATE blobs SET last_referenced_at = last_referenced_at - ?", Self.day)
        let layout = MediaLayout(directory: server.mediaDirectory)
        let inode = try FileManager.default.attributesOfItem(atPath: layout.blobPath(cleanDone.attachment.sha256))[.systemFileNumber] as? Int
        let report = try Self.report(try await runAdmin(["media", "strip-metadata", "--json", "--data-dir", server.directory]))
        #expect(report.alreadyClean == [cleanDone.attachment.sha256])
        #expect(report.cleaned.map(\.newHash) == [cleanDone.attachment.sha256])
        #expect(try FileManager.default.attributesOfItem(atPath: layout.blobPath(cleanDone.attachment.sha256))[.systemFileNumber] as? Int == inode,
                "the present blob's file was not replaced")
        #expect(try await server.count("SELECT count(*) FROM attachments WHERE blob_hash = '\(cleanDone.attachment.sha256)'") == 1)
        #expect(try await server.count("SELECT count(*) FROM blobs WHERE metadata_removed = 1 AND state = 'present'") == 1)
        #expect(try await server.count("SELECT count(*) FROM blobs WHERE state = 'present'") == 1)
        alice.close()
        await server.stop()
    }

    @Test("on PostgreSQL with a bucket: the attachment moves to the cleaned object, the old object goes, a second run changes nothing")
    func postgresAndBucket() async throws {
        try await PostgresCluster.with { cluster in
            let bucket = try await TestBucket.start()
            defer { bucket.stop() }
            let url = cluster.url()
            let server = try await MediaServer.start {
                $0.database = url; $0.databaseTimeout = databaseWait; $0.objectStore = bucket.configuration(); $0.media.imageMetadata = .keep
            }
            var logger = Logger(label: "test.strip")
            logger.logLevel = .error
            let (token, agentToken) = try await PostgresDatabase.withDatabase(url: url, logger: logger, deadline: databaseWait) { database in
                (try await database.storage.tokens.create(username: "alice", role: .customer).token,
                 try await database.storage.tokens.create(username: "sam", role: .agent).token)
            }
            let (alice, _) = try await server.connect("alice", token: token, lastSeq: 0)
            let photo = try MetadataRemovalTests.phonePhoto()
            let attachment = try await ServingTests.attach(Data(photo), name: "receipt.jpg", via: alice)
            #expect(attachment.sha256 == sha256Hex(photo))
            try await cluster.psql("UPDATE blobs SET last_referenced_at = last_referenced_at - \(Self.day)")
            func strip(_ arguments: [String]) async throws -> StripReport {
                try Self.report(try await runBuilt("chat-admin", ["media", "strip-metadata", "--json", "--data-dir", server.directory,
                                                                  "--database", url, "--media-store", bucket.url] + arguments,
                                                   environment: testCredentialsEnvironment))
            }
            let keysBefore = try await bucket.keys()
            let dry = try await strip(["--dry-run"])
            #expect(dry.cleaned.map(\.hash) == [attachment.sha256])
            #expect(try await bucket.keys() == keysBefore)

            // The cleaned bytes' hash has a deletion pending (an interrupted prune of an earlier copy): the put holds
            // the hash first, and recording the blob drops the unclaimed row, as an upload's would.
            let expected = try #require(dry.cleaned.first?.newHash)
            try await cluster.psql("INSERT INTO blob_deletions (hash, disposal, thumbnails, created_at) VALUES ('\(expected)', 'delete', true, 1)")

            let done = try await strip([])
            let newHash = try #require(done.cleaned.first?.newHash)
            #expect(newHash == expected)
            #expect(done.cleaned.first?.oldRemoved == true && done.cleaned.first?.attachments == 1 && done.pendingDeletions == 0)
            let keys = try await bucket.keys()
            #expect(keys.contains(S3MediaTests.blobKey(newHash)))
            #expect(!keys.contains(S3MediaTests.blobKey(attachment.sha256)))
            #expect(!keys.contains { $0.contains("/thumbs/") && $0.contains(attachment.sha256) })
            func query(_ sql: String) async throws -> String {
                try await cluster.psql(sql).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            #expect(try await query("SELECT count(*) FROM blob_deletions") == "0")
            #expect(try await query("SELECT count(*) FROM uploads WHERE state = 'receiving'") == "0")
            #expect(try await query("SELECT blob_hash FROM attachments") == newHash)

            let download = try await server.request("GET", "/media/\(newHash)", token: agentToken)
            #expect(download.status == 200)
            let stored = [UInt8](download.body)
            for text in MetadataRemovalTests.privateStrings { #expect(!stored.contains(text), "\(text) is still stored") }
            #expect(try Thumbnailer().decode(stored).pixels == Thumbnailer().decode(photo).pixels)
            #expect(try await server.request("GET", "/media/\(attachment.sha256)", token: agentToken).status == 404)

            let second = try await strip([])
            #expect(second.cleaned.isEmpty && second.alreadyClean.isEmpty && second.uncleanable.isEmpty)
            #expect(try await bucket.keys() == keys)
            alice.close()
            await server.stop()
        }
    }
}


extension StripMetadataTests {
    @Test("the same old bytes uploaded while the references move: the old blob stays for that upload, and the next run moves it")
    func reuploadDuringTheMove() async throws {
        let server = try await MediaServer.start { $0.media.imageMetadata = .keep }
        let token = try await server.makeToken("alice", role: .customer)
        let (alice, _) = try await server.connect("alice", token: token, lastSeq: 0)
        let photo = try MetadataRemovalTests.phonePhoto()
        let first = try await upload(Data(photo), as: "receipt.jpg", by: alice)
        try await send(first, by: alice, id: "j1")
        try await server.sqlite().execute("UPDATE blobs SET last_referenced_at = last_referenced_at - ?", Self.day)
        let old = first.attachment.sha256
        let layout = MediaLayout(directory: server.mediaDirectory)
        // Right after the move's transaction, the client uploads the photo again (the server keeps metadata): the
        // upload touches the old blob, still present, and reuses it.
        let again = Slot<UploadDone>()
        let catalog = HookedCatalog(base: SQLiteMediaCatalog(database: try server.database())) {
            let done = try? await upload(Data(photo), as: "again.jpg", by: alice)
            again.value.withLock { $0 = done }
        }
        var logger = Logger(label: "test.strip")
        logger.logLevel = .error
        let stripper = MetadataStripper(catalog: catalog, storage: LocalBlobStorage(layout: layout), layout: layout, logger: logger)
        let report = try await stripper.strip(dryRun: false)
        let reupload = try #require(again.value.withLock { $0 })
        #expect(reupload.duplicate && reupload.attachment.sha256 == old)
        let cleaned = try #require(report.cleaned.first)
        #expect(cleaned.attachments == 1)
        #expect(!cleaned.oldRemoved, "the removal's re-check saw the fresh reference")
        #expect(FileManager.default.fileExists(atPath: layout.blobPath(old)))
        try await send(reupload, by: alice, id: "j2")
        #expect(try await server.request("GET", "/media/\(old)", token: token).status == 200)

        // Later (past the grace period) the next run moves that attachment too and removes the old blob.
        try await server.sqlite().execute("UPDATE blobs SET last_referenced_at = last_referenced_at - ?", Self.day)
        let next = try Self.report(try await runAdmin(["media", "strip-metadata", "--json", "--data-dir", server.directory]))
        #expect(next.cleaned.map(\.newHash) == [cleaned.newHash])
        #expect(next.cleaned.first?.attachments == 1 && next.cleaned.first?.oldRemoved == true)
        #expect(!FileManager.default.fileExists(atPath: layout.blobPath(old)))
        #expect(try await server.count("SELECT count(*) FROM attachments WHERE blob_hash = '\(cleaned.newHash)'") == 2)
        alice.close()
        await server.stop()
    }
}

/// A catalog that runs `afterReplace` once, right after the first `replaceBlob` commits: a client's action landing
/// between the move of references and the removal of the old blob.
final class HookedCatalog: MediaCatalog {
    let base: any MediaCatalog
    let afterReplace: @Sendable () async -> Void
    private let fired = Mutex(false)

    init(base: any MediaCatalog, afterReplace: @escaping @Sendable () async -> Void) {
        self.base = base
        self.afterReplace = afterReplace
    }

    func replaceBlob(_ old: String, with new: BlobRecord, referencedBefore: Int64, releasing hold: String?,
                     at now: Int64) async throws(StoreError) -> Int? {
        let moved = try await base.replaceBlob(old, with: new, referencedBefore: referencedBefore, releasing: hold, at: now)
        let first = fired.withLock { fired in
            defer { fired = true }
            return !fired
        }
        if first { await afterReplace() }
        return moved
    }

    func insertUpload(_ upload: UploadRecord) async throws(StoreError) { try await base.insertUpload(upload) }
    func touchUpload(id: String, at now: Int64) async throws(StoreError) { try await base.touchUpload(id: id, at: now) }
    func receivingUpload(id: String) async throws(StoreError) -> UploadRecord? { try await base.receivingUpload(id: id) }
    func receivingUploads() async throws(StoreError) -> [UploadRecord] { try await base.receivingUploads() }
    func deleteReceivingUpload(id: String) async throws(StoreError) { try await base.deleteReceivingUpload(id: id) }
    func bytesUploaded(by user: String, since: Int64) async throws(StoreError) -> Int { try await base.bytesUploaded(by: user, since: since) }
    func completeUpload(id: String, blob: BlobRecord, nameMismatch: Bool, at now: Int64) async throws(StoreError) -> Bool {
        try await base.completeUpload(id: id, blob: blob, nameMismatch: nameMismatch, at: now)
    }
    func touchPresentBlob(hash: String, at now: Int64) async throws(StoreError) -> BlobRecord? { try await base.touchPresentBlob(hash: hash, at: now) }
    func blob(hash: String) async throws(StoreError) -> BlobRecord? { try await base.blob(hash: hash) }
    func finishedUpload(of user: String, reference: AttachmentReference, at now: Int64) async throws(StoreError) -> ChatProtocol.Attachment? {
        try await base.finishedUpload(of: user, reference: reference, at: now)
    }
    func accessibleBlob(hash: String, user: String, role: Role) async throws(StoreError) -> (blob: BlobRecord, name: String)? {
        try await base.accessibleBlob(hash: hash, user: user, role: role)
    }
    func inventory() async throws(StoreError) -> MediaInventory { try await base.inventory() }
    func presentBlobSizes() async throws(StoreError) -> [String: Int64] { try await base.presentBlobSizes() }
    func pruneCandidates(_ selection: BlobSelection, maxTotal: Int64?) async throws(StoreError) -> (candidates: [PruneCandidate], presentBytes: Int64) {
        try await base.pruneCandidates(selection, maxTotal: maxTotal)
    }
    func removeBlobs(_ hashes: [String], marking state: BlobState, keepThumbnails: Bool, recheck: BlobRecheck, deferring: PendingDisposal?,
                     at now: Int64, setAside: @escaping @Sendable (BlobRecord) throws -> Bool) async throws(BlobRemovalFailure) -> [String] {
        try await base.removeBlobs(hashes, marking: state, keepThumbnails: keepThumbnails, recheck: recheck, deferring: deferring, at: now,
                                   setAside: setAside)
    }
    func holdBlob(hash: String, upload id: String, staleBefore: Int64, at now: Int64) async throws(StoreError) -> Bool {
        try await base.holdBlob(hash: hash, upload: id, staleBefore: staleBefore, at: now)
    }
    func recordPendingDeletions(_ hashes: [String], disposal: PendingDisposal, at now: Int64) async throws(StoreError) -> [String] {
        try await base.recordPendingDeletions(hashes, disposal: disposal, at: now)
    }
    func claimPendingDeletions(_ hashes: [String]?, limit: Int, claim: String, staleBefore: Int64, at now: Int64) async throws(StoreError)
        -> [PendingDeletion] {
        try await base.claimPendingDeletions(hashes, limit: limit, claim: claim, staleBefore: staleBefore, at: now)
    }
    func releasePendingDeletions(_ hashes: [String], claim: String) async throws(StoreError) {
        try await base.releasePendingDeletions(hashes, claim: claim)
    }
    func unclaimPendingDeletions(_ hashes: [String], claim: String) async throws(StoreError) {
        try await base.unclaimPendingDeletions(hashes, claim: claim)
    }
    func pendingDeletions() async throws(StoreError) -> [PendingDeletion] { try await base.pendingDeletions() }
    func deleteStaleUploads(ids: [String], updatedBefore cutoff: Int64) async throws(StoreError) {
        try await base.deleteStaleUploads(ids: ids, updatedBefore: cutoff)
    }
    func stats(byUser: Bool) async throws(StoreError) -> MediaStats { try await base.stats(byUser: byUser) }
}

/// A value set from a `@Sendable` closure and read after it ran.
final class Slot<Value: Sendable>: Sendable {
    let value = Mutex<Value?>(nil)
}
