-- Private image metadata at ingest: true when the stored JPEG or PNG holds no location, device or other private
-- metadata (removed, or there was none), false when it could not be cleaned and was stored as sent, NULL for other
-- types and for blobs stored while the server kept metadata.
ALTER TABLE blobs ADD COLUMN metadata_removed BOOLEAN;
-- Frames of an animated GIF or WebP (counted from the frame headers, at most the thumbnailer's limit); NULL for
-- still images and other types.
ALTER TABLE blobs ADD COLUMN frames INTEGER CHECK (frames > 1);
-- Audio and video playing time in milliseconds, when the container says it cheaply; NULL otherwise.
ALTER TABLE blobs ADD COLUMN duration_ms BIGINT CHECK (duration_ms >= 0);
