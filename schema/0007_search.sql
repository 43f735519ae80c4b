-- Full-text search of messages and private notes (kinds 'message' and 'note'; status and assignment events are not
-- text anyone searches). An external-content FTS5 table on messages: the text is stored once, in messages, and the
-- index follows it through triggers. unicode61 with remove_diacritics 2 folds case and accents in any script, so
-- "cafe" finds "Café" and "привет" finds "Привет".
CREATE VIRTUAL TABLE messages_fts USING fts5(
    body,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

-- What is already stored (not 'rebuild', which would index every kind).
INSERT INTO messages_fts (rowid, body) SELECT id, body FROM messages WHERE kind IN ('message', 'note');

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.kind IN ('message', 'note') BEGIN
    INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
END;

-- An external-content index must be told the old text to remove it.
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN old.kind IN ('message', 'note') BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF body, kind ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) SELECT 'delete', old.id, old.body WHERE old.kind IN ('message', 'note');
    INSERT INTO messages_fts (rowid, body) SELECT new.id, new.body WHERE new.kind IN ('message', 'note');
END;
