-- Media: content-addressed blobs, uploads (in progress and done) and message attachments.
-- Hashes are lowercase hex SHA-256 (64 characters). Times are Unix epoch milliseconds.

-- One row per distinct content, written after the file is in place under media/blobs/ and its thumbnails exist.
-- thumbnails is a JSON array of {"size","type","width","height"} for the thumbnails on disk.
CREATE TABLE blobs (
    hash               TEXT    PRIMARY KEY CHECK (length(hash) = 64),
    size               INTEGER NOT NULL CHECK (size > 0),
    mime_type          TEXT    NOT NULL,
    width              INTEGER,
    height             INTEGER,
    thumbnails         TEXT    NOT NULL DEFAULT '[]',
    created_at         INTEGER NOT NULL,
    last_referenced_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Every upload. 'receiving': bytes are going to media/tmp/<id>.part and the upload may be resumed until
-- updated_at + the resume window; 'done': the bytes are the blob blob_hash, and the uploader may attach it.
-- A done upload is the uploader's reference to the blob: only the uploader can attach it to a message.
CREATE TABLE uploads (
    id              TEXT    PRIMARY KEY,
    username        TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    declared_size   INTEGER,
    declared_sha256 TEXT,
    state           TEXT    NOT NULL CHECK (state IN ('receiving', 'done')),
    blob_hash       TEXT    REFERENCES blobs(hash),
    size            INTEGER NOT NULL DEFAULT 0,
    name_mismatch   INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    completed_at    INTEGER
) WITHOUT ROWID;
CREATE INDEX uploads_by_user ON uploads(username, created_at);
CREATE INDEX uploads_by_user_blob ON uploads(username, blob_hash) WHERE blob_hash IS NOT NULL;

-- A blob attached to a message. Access to a blob is decided by these rows: a customer may fetch it when it is
-- attached to a message of their own conversation, an agent when it is attached to any message.
CREATE TABLE attachments (
    message_id    INTEGER NOT NULL REFERENCES messages(id),
    position      INTEGER NOT NULL,
    blob_hash     TEXT    NOT NULL REFERENCES blobs(hash),
    name          TEXT    NOT NULL,
    uploader      TEXT    NOT NULL,
    name_mismatch INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (message_id, position)
) WITHOUT ROWID;
CREATE INDEX attachments_by_blob ON attachments(blob_hash);
