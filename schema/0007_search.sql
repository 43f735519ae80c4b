-- Full-text search of messages and private notes (kinds 'message' and 'note'; status and assignment events are not
-- text anyone searches). An external-content FTS5 table on messages: the text is stored once, in messages, and the
-- index follows it through triggers. unicode61 with remove_diacritics 2 folds case and accents in any script, so
-- "cafe" finds "Café" and "привет" finds "Привет".
--
-- search_scope indexes one more word per row, naming its conversation and kind ("c42m": a message of conversation
-- 42, "c42n": a note), so that a search of one conversation, or of a customer's messages only, is an intersection
-- with a short list in the index instead of a filter applied to every match in every conversation. A virtual
-- generated column: nothing more is stored in messages.
ALTER TABLE messages ADD COLUMN search_scope TEXT
    GENERATED ALWAYS AS ('c' || conversation_id || CASE kind WHEN 'note' THEN 'n' ELSE 'm' END) VIRTUAL;

CREATE VIRTUAL TABLE messages_fts USING fts5(
    body,
    search_scope,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

-- What is already stored (not 'rebuild', which would index every kind).
INSERT INTO messages_fts (rowid, body, search_scope) SELECT id, body, search_scope FROM messages WHERE kind IN ('message', 'note');

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.kind IN ('message', 'note') BEGIN
    INSERT INTO messages_fts (rowid, body, search_scope) VALUES (new.id, new.body, new.search_scope);
END;

-- An external-content index must be told the old text to remove it.
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN old.kind IN ('message', 'note') BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body, search_scope) VALUES ('delete', old.id, old.body, old.search_scope);
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF body, kind, conversation_id ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body, search_scope)
        SELECT 'delete', old.id, old.body, old.search_scope WHERE old.kind IN ('message', 'note');
    INSERT INTO messages_fts (rowid, body, search_scope) SELECT new.id, new.body, new.search_scope WHERE new.kind IN ('message', 'note');
END;
