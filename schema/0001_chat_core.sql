-- Chat core: tokens, conversations, messages, read markers.
-- Released migrations are never edited: add a new numbered file instead.
-- Times are Unix epoch milliseconds (INTEGER).

-- Session tokens, as in the original design's Sessions table (username + token), but the token is stored only as
-- its SHA-256 and carries a role, an optional expiry and a revocation time.
CREATE TABLE sessions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL,
    token_hash    BLOB    NOT NULL CHECK (length(token_hash) = 32),
    role          TEXT    NOT NULL CHECK (role IN ('customer', 'agent')),
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    revoked_at    INTEGER,
    last_used_at  INTEGER
);
CREATE INDEX sessions_by_token_hash ON sessions(token_hash);
CREATE INDEX sessions_by_username ON sessions(username);
CREATE INDEX sessions_by_revoked_at ON sessions(revoked_at) WHERE revoked_at IS NOT NULL;

-- One conversation per customer. last_seq and customer_messages are maintained by the writer in the same
-- transaction as the messages, so the roster can be built without scanning messages.
CREATE TABLE conversations (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    customer          TEXT    NOT NULL UNIQUE,
    last_seq          INTEGER NOT NULL DEFAULT 0,
    customer_messages INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL
);

-- Every message, stored before it is acknowledged. (sender, client_id, conversation_id) is unique so a resend with
-- the same client id finds the first row instead of creating a second one. customer_ordinal counts the customer's
-- own messages up to this one, so unread counts are a subtraction.
CREATE TABLE messages (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id  INTEGER NOT NULL REFERENCES conversations(id),
    seq              INTEGER NOT NULL,
    sender           TEXT    NOT NULL,
    sender_role      TEXT    NOT NULL CHECK (sender_role IN ('customer', 'agent')),
    client_id        TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    sent_at          INTEGER NOT NULL,
    broadcast        INTEGER NOT NULL DEFAULT 0,
    customer_ordinal INTEGER NOT NULL,
    UNIQUE (conversation_id, seq),
    UNIQUE (sender, client_id, conversation_id)
);

-- How far each user (agent or customer) has read each conversation.
CREATE TABLE read_markers (
    username        TEXT    NOT NULL,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    seq             INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (username, conversation_id)
) WITHOUT ROWID;
