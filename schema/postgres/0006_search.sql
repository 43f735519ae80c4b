-- Full-text search of messages and private notes (kinds 'message' and 'note'; status and assignment events are not
-- text anyone searches), with the `simple` configuration: no stemming and no stop words, so words of any language are
-- found as written. Case is folded by ICU (the database's own locale may be C, which folds only ASCII); accents are
-- taken off by decomposing (NFD) and dropping the combining marks, so "cafe" finds "Café" and "привет" finds
-- "Привет", as on SQLite. Anything but letters and digits becomes a space, so the parser sees words as queries are
-- split (SearchQuery.words) and as SQLite's tokeniser splits them: without it, "example.com" or "a-b" would be one
-- lexeme, found by no query. (A translate() table of accented letters cost about 90 microseconds a message, most of
-- a large commit's time; this costs about 16.)
-- The files here are split at semicolons (no dollar quoting), so the function has an SQL-standard body.
CREATE FUNCTION chat_search_text(body TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
RETURN regexp_replace(regexp_replace(normalize(lower(body COLLATE "und-x-icu"), NFD), '[\u0300-\u036f]+', '', 'g'),
    '[^[:alnum:]]+', ' ', 'g');

-- An expression index: the text is stored once, in messages, and the index follows every insert by itself.
CREATE INDEX messages_search ON messages USING gin (to_tsvector('simple'::regconfig, chat_search_text(body)))
    WHERE kind IN ('message', 'note');
