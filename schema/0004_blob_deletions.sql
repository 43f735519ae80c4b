-- Deferred deletions, for blob storages whose deletions cannot be part of a database transaction (an object store).
-- A row is written in the transaction that marks its blob pruned or quarantined (or, by `media gc`, for an object no
-- present row accounts for); the objects are deleted after the commit by whoever *claims* the row (claimed_at,
-- claim), and the row goes once they are. Rules (see PendingDeletion in ChatStore and ARCHITECTURE.md):
-- - a claim is granted only while the blob is not present and no receiving upload holds the hash (storing_hash);
-- - an upload that is about to put the bytes holds the hash first, and waits while a claim is live;
-- - marking a blob present deletes its unclaimed row, and is refused while a claim is live.
-- So objects are deleted only when no committed present row and no upload in progress needs them.
CREATE TABLE blob_deletions (
    hash        TEXT    PRIMARY KEY CHECK (length(hash) = 64),
    disposal    TEXT    NOT NULL CHECK (disposal IN ('delete', 'quarantine')),
    thumbnails  INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    claimed_at  INTEGER,
    claim       TEXT
) WITHOUT ROWID;

-- The hash an upload is putting into the object store: a hold on deletions of that hash until the upload is done
-- or gone.
ALTER TABLE uploads ADD COLUMN storing_hash TEXT;
CREATE INDEX uploads_by_storing_hash ON uploads(storing_hash) WHERE storing_hash IS NOT NULL;
