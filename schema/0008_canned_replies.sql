-- Canned replies: answers agents insert with one command. The text may hold {customer} and {agent}, which the
-- agent's client fills in. Managed with `chat-admin canned`; servers look for changes every few seconds.
CREATE TABLE canned_replies (
    name       TEXT    PRIMARY KEY,
    body       TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
