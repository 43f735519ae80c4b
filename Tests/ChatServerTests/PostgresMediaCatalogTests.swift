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

    /// Deferred deletions (an object store) between two nodes (two pools on one database, or two SQLite connections
    /// on one file): node A prunes and deletes objects under claims, node B re-uploads the same bytes. Whatever the order, a present row never coexists with a live claim, so no
    /// object a committed row needs is deleted. Each interleaving is driven step by step.
    @Test("pending deletions: a re-upload on another node holds off the deleter, or waits for it; never both present and deleted",
          .timeLimit(.minutes(2)), arguments: StoreBackend.allCases)
    func pendingDeletionAgainstReuploadOnAnotherNode(on backend: StoreBackend) async throws {
        try await backend.withTwoNodes(logger: Self.logger) { nodeA, nodeB in
            let remover = nodeA.catalog, uploader = nodeB.catalog
            let stale: Int64 = 0
            func prune(_ blob: BlobRecord, at time: Int64) async throws {
                let removed = try await remover.removeBlobs([blob.hash], marking: .pruned, keepThumbnails: false, recheck: .present,
                                                            deferring: .delete, at: time) { _ in true }
                #expect(removed == [blob.hash])
            }

            // 1. The uploader holds the hash first: the deleter cannot claim; the upload's commit cancels the deletion.
            let x = BlobRecord(hash: Self.hash("a"), size: 10, mimeType: "text/plain")
            _ = try await Self.upload(remover, id: "u1", by: "alice", name: "x.txt", x, at: 1000)
            try await prune(x, at: 2000)
            #expect(try await remover.pendingDeletions().map(\.hash) == [x.hash])
            try await uploader.insertUpload(UploadRecord(id: "u2", username: "bob", name: "x.txt", declaredSize: 10,
                                                         declaredSHA256: nil, createdAt: 3000))
            #expect(try await uploader.touchPresentBlob(hash: x.hash, at: 3001) == nil)
            #expect(try await uploader.holdBlob(hash: x.hash, upload: "u2", staleBefore: stale, at: 3002))
            #expect(try await remover.claimPendingDeletions([x.hash], limit: 10, claim: "A", staleBefore: stale, at: 3003).isEmpty)
            #expect(try await remover.claimPendingDeletions(nil, limit: 10, claim: "A", staleBefore: stale, at: 3004).isEmpty)
            try await uploader.completeUpload(id: "u2", blob: x, nameMismatch: false, at: 3005)
            #expect(try await remover.pendingDeletions().isEmpty)
            #expect(try await remover.blob(hash: x.hash)?.state == .present)
            // gc finding the object "orphan" from an older listing records nothing for a present blob.
            #expect(try await remover.recordPendingDeletions([x.hash], disposal: .delete, at: 3006).isEmpty)

            // 2. The deleter claims first: the uploader's hold is refused (it waits), and an uploader that
            //    trusted a HEAD and went straight to recording is refused too; after the release both work.
            let y = BlobRecord(hash: Self.hash("b"), size: 20, mimeType: "text/plain")
            _ = try await Self.upload(remover, id: "u3", by: "alice", name: "y.txt", y, at: 4000)
            try await prune(y, at: 5000)
            let claimed = try await remover.claimPendingDeletions(nil, limit: 10, claim: "A", staleBefore: stale, at: 5001)
            #expect(claimed.map(\.hash) == [y.hash])
            try await uploader.insertUpload(UploadRecord(id: "u4", username: "bob", name: "y.txt", declaredSize: 20,
                                                         declaredSHA256: nil, createdAt: 5002))
            #expect(try await !uploader.holdBlob(hash: y.hash, upload: "u4", staleBefore: stale, at: 5003))
            await #expect(throws: StoreError.removalInProgress(hash: y.hash)) {
                try await uploader.completeUpload(id: "u4", blob: y, nameMismatch: false, at: 5004)
            }
            #expect(try await remover.blob(hash: y.hash)?.state == .pruned)
            // The objects are deleted now; then the claim is released.
            try await remover.releasePendingDeletions([y.hash], claim: "A")
            #expect(try await uploader.holdBlob(hash: y.hash, upload: "u4", staleBefore: stale, at: 5005))
            try await uploader.completeUpload(id: "u4", blob: y, nameMismatch: false, at: 5006)
            #expect(try await remover.blob(hash: y.hash)?.state == .present)

            // 3. A failed deletion gives its claim up, and an abandoned claim (older than the lease) is taken over.
            let z = BlobRecord(hash: Self.hash("c"), size: 30, mimeType: "text/plain")
            _ = try await Self.upload(remover, id: "u5", by: "alice", name: "z.txt", z, at: 6000)
            try await prune(z, at: 7000)
            #expect(try await remover.claimPendingDeletions([z.hash], limit: 10, claim: "A", staleBefore: stale, at: 7001).count == 1)
            try await remover.unclaimPendingDeletions([z.hash], claim: "A")
            #expect(try await remover.claimPendingDeletions([z.hash], limit: 10, claim: "B", staleBefore: stale, at: 7002).count == 1)
            #expect(try await remover.claimPendingDeletions([z.hash], limit: 10, claim: "C", staleBefore: 7002, at: 7003).isEmpty)
            #expect(try await remover.claimPendingDeletions([z.hash], limit: 10, claim: "C", staleBefore: 7003, at: 7004).count == 1)
            try await remover.releasePendingDeletions([z.hash], claim: "B")
            #expect(try await remover.pendingDeletions().map(\.claimedAt) == [7004])
            try await remover.releasePendingDeletions([z.hash], claim: "C")
            #expect(try await remover.pendingDeletions().isEmpty)
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
