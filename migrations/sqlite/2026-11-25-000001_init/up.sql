-- Ids of users and sessions are UUIDs stored as text and times are Unix milliseconds, so
-- that one diesel schema serves PostgreSQL and SQLite alike.
CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    username       TEXT   NOT NULL,
    username_lower TEXT   NOT NULL CONSTRAINT users_username_unique UNIQUE,
    email          TEXT   NOT NULL,
    email_lower    TEXT   NOT NULL CONSTRAINT users_email_unique UNIQUE,
    password_hash  TEXT   NOT NULL,
    created_at     INTEGER NOT NULL
);

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    user_id     TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_jti TEXT   NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE rooms (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT   NOT NULL,
    name_lower       TEXT   NOT NULL CONSTRAINT rooms_name_unique UNIQUE,
    created_at       INTEGER NOT NULL,
    last_seq         INTEGER NOT NULL DEFAULT 0,
    last_activity_at INTEGER NOT NULL
);
CREATE INDEX rooms_activity ON rooms (last_activity_at DESC, id DESC);

CREATE TABLE memberships (
    room_id       INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id       TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at     INTEGER NOT NULL,
    last_read_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX memberships_user_id ON memberships (user_id);

-- Each room is a log: seq is gap-free per room (assigned from rooms.last_seq in the
-- inserting transaction) and (room, sender, client_msg_id) makes sends idempotent.
CREATE TABLE messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id       INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    sender_id     TEXT REFERENCES users (id) ON DELETE SET NULL,
    content       TEXT   NOT NULL,
    created_at    INTEGER NOT NULL,
    client_msg_id TEXT,
    CONSTRAINT messages_room_seq_unique UNIQUE (room_id, seq),
    CONSTRAINT messages_client_msg_id_unique UNIQUE (room_id, sender_id, client_msg_id)
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
