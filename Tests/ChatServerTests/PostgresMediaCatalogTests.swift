import ChatProtocol
import ChatStore
import ChatStorePostgres
import Foundation
import Logging
import Synchronization
import TestProcesses
import Testing

/// One body of expectations run against both catalogs: PostgreSQL's must do what SQLite's does.
@Suite("Media catalog on SQLite and PostgreSQL", .serialized)
struct PostgresMediaCatalogTests {
    private static let logger: Logger = {
        var logger = Logger(label: "test.postgres.catalog")
        logger.logLevel = .error  // postgres-nio logs each failed connection attempt
        return logger
    }()

    private static func withStorage(_ backend: StoreBackend, _ body: @Sendable (ChatStorage) async throws -> Void) async throws {
        try await backend.withStorage(logger: logger, body)
    }

    private static func hash(_ character: Character) -> String {
        String(repeating: character, count: 64)
    }

    private static func message(from sender: String, _ role: Role, to customer: String, _ id: String, attaching attachment: ChatProtocol.Attachment)
        -> OutgoingMessage {
        OutgoingMessage(sender: sender, senderRole: role, clientId: id, text: id, target: .conversation(customer), attachments: [attachment])
    }

    /// An upload from begin to done.
    private static func upload(_ catalog: any MediaCatalog, id: String, by user: String, name: String, _ blob: BlobRecord,
                               at time: Int64, nameMismatch: Bool = false) async throws -> Bool {
        try await catalog.insertUpload(UploadRecord(id: id, username: user, name: name, declaredSize: blob.size, declaredSHA256: nil,
                                                    createdAt: time))
        return try await catalog.completeUpload(id: id, blob: blob, nameMismatch: nameMismatch, at: time + 1)
    }

    @Test("uploads, attachments, access, pruning with its re-check and statistics", .timeLimit(.minutes(2)),
          arguments: StoreBackend.allCases)
    func sameBehaviour(_ backend: StoreBackend) async throws {
        try await Self.withStorage(backend) { storage in try await Self.conformance(storage) }
    }

    private static func conformance(_ storage: ChatStorage) async throws {
        let catalog = storage.catalog
        for (user, role) in [("alice", Role.customer), ("bob", .customer), ("sam", .agent)] {
            _ = try await storage.tokens.create(username: user, role: role)
        }
        let t0: Int64 = 1_000_000

        // An upload's life: receiving, touched, done; the daily allowance counts done uploads by creation time.
        let receiving = UploadRecord(id: "u1", username: "alice", name: "cat.png", declaredSize: 3000, declaredSHA256: nil, createdAt: t0)
        try await catalog.insertUpload(receiving)
        #expect(try await catalog.receivingUpload(id: "u1") == receiving)
        try await catalog.touchUpload(id: "u1", at: t0 + 5)
        #expect(try await catalog.receivingUpload(id: "u1")?.updatedAt == t0 + 5)
        #expect(try await catalog.receivingUploads().map(\.id) == ["u1"])
        #expect(try await catalog.bytesUploaded(by: "alice", since: 0) == 0)
        // An animated PNG whose metadata was removed at ingest: the new columns go in and come back.
        let cat = BlobRecord(hash: hash("a"), size: 3000, mimeType: "image/png", width: 40, height: 30,
                             thumbnails: [ThumbnailInfo(size: "crop96", type: "image/jpeg", width: 96, height: 96)],
                             metadataRemoved: true, frames: 3)
        #expect(try await catalog.completeUpload(id: "u1", blob: cat, nameMismatch: false, at: t0 + 10) == false)
        #expect(try await catalog.receivingUpload(id: "u1") == nil)
        #expect(try await catalog.blob(hash: cat.hash) == cat)
        #expect(try await catalog.bytesUploaded(by: "alice", since: t0) == 3000)
        #expect(try await catalog.bytesUploaded(by: "alice", since: t0 + 1) == 0)
        // The same bytes again, by someone else: one blob.
        #expect(try await upload(catalog, id: "u2", by: "bob", name: "copy.png", cat, at: t0 + 20, nameMismatch: true))

        // Abandoned and stale uploads go; a done one is not "receiving".
        try await catalog.insertUpload(UploadRecord(id: "u3", username: "alice", name: "x", declaredSize: nil, declaredSHA256: nil, createdAt: t0))
        try await catalog.insertUpload(UploadRecord(id: "u4", username: "alice", name: "y", declaredSize: nil, declaredSHA256: nil, createdAt: t0))
        try await catalog.deleteReceivingUpload(id: "u3")
        try await catalog.deleteReceivingUpload(id: "u1")
        try await catalog.deleteStaleUploads(ids: ["u4"], updatedBefore: t0)
        #expect(try await catalog.receivingUploads().map(\.id) == ["u4"], "updated at the cutoff is not stale")
        try await catalog.deleteStaleUploads(ids: ["u4", "u1"], updatedBefore: t0 + 1)
        #expect(try await catalog.receivingUploads().isEmpty)
        #expect(try await catalog.bytesUploaded(by: "alice", since: 0) == 3000)

        // Finished uploads, by id or (any case) hash, only the user's own.
        let alicesCat = cat.attachment(name: "cat.png", nameMismatch: false)
        #expect(try await catalog.finishedUpload(of: "alice", reference: AttachmentReference(uploadId: "u1"), at: t0 + 30) == alicesCat)
        #expect(try await catalog.finishedUpload(of: "bob", reference: AttachmentReference(sha256: cat.hash.uppercased()), at: t0 + 30)
                == cat.attachment(name: "copy.png", nameMismatch: true))
        #expect(try await catalog.finishedUpload(of: "bob", reference: AttachmentReference(uploadId: "u1"), at: t0 + 30) == nil)
        #expect(try await catalog.finishedUpload(of: "bob", reference: AttachmentReference(), at: t0 + 30) == nil)

        // Access: the customer of the conversation and agents; not another customer, not an unknown blob.
        _ = try await storage.messages.commit([message(from: "alice", .customer, to: "alice", "m1", attaching: alicesCat)], now: t0 + 40)
        #expect(try await catalog.accessibleBlob(hash: cat.hash, user: "alice", role: .customer)?.name == "cat.png")
        #expect(try await catalog.accessibleBlob(hash: cat.hash, user: "alice", role: .customer)?.blob == cat)
        #expect(try await catalog.accessibleBlob(hash: cat.hash, user: "bob", role: .customer) == nil)
        #expect(try await catalog.accessibleBlob(hash: cat.hash, user: "sam", role: .agent)?.name == "cat.png")
        #expect(try await catalog.accessibleBlob(hash: hash("f"), user: "sam", role: .agent) == nil)
        _ = try await storage.messages.commit([message(from: "sam", .agent, to: "bob", "m2", attaching: alicesCat)], now: t0 + 50)
        #expect(try await catalog.accessibleBlob(hash: cat.hash, user: "bob", role: .customer) != nil)

        // Two unreferenced blobs; the selection takes them least recently referenced first, cut by the maximum.
        let doc = BlobRecord(hash: hash("b"), size: 5000, mimeType: "application/pdf")
        // (A duration on a PDF: the catalog keeps what ingest found, and the column must round-trip.)
        let old = BlobRecord(hash: hash("c"), size: 7000, mimeType: "application/pdf", durationMs: 61_500)
        #expect(try await upload(catalog, id: "u5", by: "alice", name: "doc.pdf", doc, at: t0 + 60) == false)
        #expect(try await upload(catalog, id: "u6", by: "alice", name: "old.pdf", old, at: t0 + 70) == false)
        let selection = BlobSelection(referencedBefore: t0 + 1000, unreferenced: true)
        let all = try await catalog.pruneCandidates(selection, maxTotal: nil)
        #expect(all.presentBytes == 15000)
        #expect(all.candidates == [PruneCandidate(hash: doc.hash, type: "application/pdf", size: 5000, lastReferencedAt: t0 + 61, attachments: 0),
                                   PruneCandidate(hash: old.hash, type: "application/pdf", size: 7000, lastReferencedAt: t0 + 71, attachments: 0)])
        #expect(try await catalog.pruneCandidates(selection, maxTotal: 10000).candidates.map(\.hash) == [doc.hash])
        #expect(try await catalog.pruneCandidates(BlobSelection(referencedBefore: t0 + 1000, type: "image/*"), maxTotal: nil)
                    .candidates.map { [$0.hash, String($0.attachments)] } == [[cat.hash, "2"]])
        #expect(try await catalog.pruneCandidates(BlobSelection(referencedBefore: t0 + 1000, largerThan: 5000, type: "application/pdf"),
                                                  maxTotal: nil).candidates.map(\.hash) == [old.hash])
        #expect(try await catalog.pruneCandidates(BlobSelection(referencedBefore: t0 + 1000, type: "image_*"), maxTotal: nil).candidates.isEmpty)

        // A blob touched after the selection is kept by the re-check; a set-aside that fails marks nothing.
        #expect(try await catalog.touchPresentBlob(hash: old.hash, at: t0 + 2000) == old)
        let setAside = Locked<[String]>([])
        let removed = try await catalog.removeBlobs([doc.hash, old.hash], marking: .pruned, keepThumbnails: false,
                                                    recheck: .matches(selection), at: t0 + 3000) { blob in
            setAside.value.withLock { $0.append(blob.hash) }
            return true
        }
        #expect(removed == [doc.hash] && setAside.value.withLock { $0 } == [doc.hash])
        do {
            _ = try await catalog.removeBlobs([old.hash, cat.hash], marking: .quarantined, keepThumbnails: false, recheck: .present,
                                              at: t0 + 3000) { blob in
                if blob.hash == cat.hash { throw TestFailure("disk full") }
                return true
            }
            Issue.record("a failing set-aside was not reported")
        } catch .setAside(let error) {
            #expect("\(error)" == "disk full")
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect(try await catalog.presentBlobSizes() == [cat.hash: 3000, old.hash: 7000])
        #expect(try await catalog.blob(hash: cat.hash)?.thumbnails == cat.thumbnails)

        // Touch-before-trust on removed bytes: nothing, and an expired attachment.
        #expect(try await catalog.touchPresentBlob(hash: doc.hash, at: t0 + 4000) == nil)
        #expect(try await catalog.blob(hash: doc.hash)?.state == .pruned)
        let expired = try await catalog.finishedUpload(of: "alice", reference: AttachmentReference(sha256: doc.hash), at: t0 + 4000)
        #expect(expired?.expired == true && expired?.name == "doc.pdf")

        let inventory = try await catalog.inventory()
        #expect(Set(inventory.blobs.map(\.hash)) == [cat.hash, doc.hash, old.hash] && inventory.receivingUploads.isEmpty)
        let stats = try await catalog.stats(byUser: true)
        let byUser = [MediaStats.UserTotal(user: "alice", uploads: 3, bytesUploaded: 15000, distinctBlobs: 3, bytesPresent: 10000),
                      MediaStats.UserTotal(user: "bob", uploads: 1, bytesUploaded: 3000, distinctBlobs: 1, bytesPresent: 3000)]
        #expect(stats == MediaStats(blobs: 2, bytesStored: 10000, pruned: 1, quarantined: 0, attachments: 2, bytesReferenced: 6000,
                                    referencedStored: 3000, unreferencedBlobs: 1, unreferencedBytes: 7000, oldest: t0 + 10, newest: t0 + 71,
                                    byType: [MediaStats.TypeTotal(type: "application/pdf", blobs: 1, bytes: 7000),
                                             MediaStats.TypeTotal(type: "image/png", blobs: 1, bytes: 3000)],
                                    byUser: byUser))
        #expect(stats.dedupSavings == 3000)
        #expect(try await catalog.stats(byUser: false).byUser == nil)

        // The same bytes uploaded again make the blob present again.
        #expect(try await upload(catalog, id: "u7", by: "bob", name: "again.pdf", doc, at: t0 + 5000))
        #expect(try await catalog.touchPresentBlob(hash: doc.hash, at: t0 + 5002)?.state == .present)
    }

    /// Two pools on one database are two nodes. The remover's set-aside holds its transaction open while the other
    /// node touches the blob: that touch must wait and then find the bytes gone, never report them present.
    @Test("a touch on another node during a removal waits for it and finds the blob gone", .timeLimit(.minutes(2)))
    func touchDuringRemovalOnAnotherNode() async throws {
        try await PostgresCluster.with { cluster in
            let url = cluster.url()
            try await PostgresDatabase.withDatabase(url: url, logger: Self.logger, deadline: databaseWait) { remover in
                try await PostgresDatabase.withDatabase(url: url, logger: Self.logger, deadline: databaseWait) { server in
                    let blob = BlobRecord(hash: Self.hash("d"), size: 10, mimeType: "text/plain")
                    _ = try await Self.upload(remover.storage.catalog, id: "u1", by: "alice", name: "a.txt", blob, at: 1000)
                    let touch = Locked<Task<BlobRecord?, any Error>?>(nil)
                    let serverCatalog = server.storage.catalog
                    let removed = try await remover.storage.catalog.removeBlobs([blob.hash], marking: .pruned, keepThumbnails: false,
                                                                               recheck: .present, at: 2000) { _ in
                        touch.value.withLock { $0 = Task { try await serverCatalog.touchPresentBlob(hash: blob.hash, at: 1500) } }
                        // Long enough for the touch to reach the row lock; if it is slower, it runs after the commit.
                        Thread.sleep(forTimeInterval: 0.3)
                        return true
                    }
                    #expect(removed == [blob.hash])
                    guard let task = touch.value.withLock({ $0 }) else {
                        Issue.record("the set-aside was not called")
                        return
                    }
                    #expect(try await task.value == nil)
                    #expect(try await serverCatalog.blob(hash: blob.hash)?.state == .pruned)
                }
            }
        }
    }
}

/// A value the test shares with an escaping closure (a `Mutex` itself cannot be captured by one).
private final class Locked<Value: Sendable>: Sendable {
    let value: Mutex<Value>

    init(_ value: Value) {
        self.value = Mutex(value)
    }
}
