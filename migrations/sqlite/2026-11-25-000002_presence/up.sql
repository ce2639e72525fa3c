-- Who has a live WebSocket in which room, on which node; refreshed by each node's
-- heartbeat, so the rows of a node that died expire.
CREATE TABLE presence (
    node_id TEXT   NOT NULL,
    room_id INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (node_id, room_id, user_id)
);
CREATE INDEX presence_room ON presence (room_id, seen_at);
CREATE INDEX presence_seen ON presence (seen_at);
