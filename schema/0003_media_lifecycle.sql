-- Media lifecycle: a blob's bytes can be removed by `chat-admin media prune` ('pruned') or set aside as corrupted by
-- `chat-admin media verify --repair` ('quarantined'). The row stays, so attachments keep their name, type and size and
-- clients show them as expired; an upload of the same bytes later makes the blob 'present' again.
-- Deletion protocol (see MediaCatalog and docs/PROTOCOL.md): the server "touches" a blob (last_referenced_at = now,
-- only while present) in a write transaction before it relies on the existing bytes; a pruner re-checks its criteria
-- and removes the files inside its own write transaction, so the two never interleave.
ALTER TABLE blobs ADD COLUMN state TEXT NOT NULL DEFAULT 'present' CHECK (state IN ('present', 'pruned', 'quarantined'));
ALTER TABLE blobs ADD COLUMN removed_at INTEGER;
CREATE INDEX blobs_by_last_reference ON blobs(state, last_referenced_at);
CREATE INDEX uploads_by_blob ON uploads(blob_hash) WHERE blob_hash IS NOT NULL;
