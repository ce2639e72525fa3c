-- Back to the function of 2026-12-01-000003_append_batch, word for word.
CREATE OR REPLACE FUNCTION webchat_append_batch(
    p_room bigint[], p_sender text[], p_content text[], p_created bigint[], p_key text[]
) RETURNS TABLE (
    idx bigint, outcome smallint, dup_of bigint, id bigint, seq bigint, sender_id text,
    username text, room_name text, content text, created_at bigint, client_msg_id text
) LANGUAGE plpgsql
-- Every join here is from a batch (at most a few hundred rows) into a growing table by its
-- key. The planner cannot see the arrays' sizes in the plan it keeps, and a hash join
-- would scan the whole of messages or memberships for each batch: nested loops over the
-- indexes, always.
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
#variable_conflict use_column
BEGIN
    -- Rooms locked in id order: batches of two nodes that share rooms queue, never deadlock.
    -- NO KEY UPDATE is the lock the UPDATE below takes anyway; FOR UPDATE would also wait
    -- for every transaction holding a foreign-key share lock on the room (a presence
    -- heartbeat's upsert of hundreds of rows, a join) and stall the batch behind it.
    PERFORM 1 FROM rooms r WHERE r.id = ANY(p_room) ORDER BY r.id FOR NO KEY UPDATE;
    RETURN QUERY
    WITH input AS (
        SELECT t.r, t.s, t.c, t.at, t.k, t.i,
               mb.user_id IS NOT NULL AS member,
               old.id AS old_id,
               CASE WHEN t.k IS NULL THEN t.i
                    ELSE min(t.i) OVER (PARTITION BY t.r, t.s, t.k) END AS first
        FROM unnest(p_room, p_sender, p_content, p_created, p_key) WITH ORDINALITY AS t(r, s, c, at, k, i)
        LEFT JOIN memberships mb ON mb.room_id = t.r AND mb.user_id = t.s
        LEFT JOIN messages old ON old.room_id = t.r AND old.sender_id = t.s AND old.client_msg_id = t.k
    ),
    fresh AS (
        SELECT f.*, row_number() OVER (PARTITION BY f.r ORDER BY f.i) AS n
        FROM input f
        WHERE f.member AND f.old_id IS NULL AND f.first = f.i
    ),
    bumped AS (
        UPDATE rooms SET last_seq = rooms.last_seq + g.cnt, last_activity_at = g.at
        FROM (SELECT fr.r, count(*) AS cnt, max(fr.at) AS at FROM fresh fr GROUP BY fr.r) g
        WHERE rooms.id = g.r
        RETURNING rooms.id AS room_id, rooms.last_seq - g.cnt AS base, rooms.name
    ),
    planned AS (
        SELECT f.i, f.r, f.s, f.c, f.at, f.k, b.base + f.n AS seq, b.name
        FROM fresh f JOIN bumped b ON b.room_id = f.r
    ),
    inserted AS (
        INSERT INTO messages (room_id, seq, sender_id, content, created_at, client_msg_id)
        SELECT p.r, p.seq, p.s, p.c, p.at, p.k FROM planned p
        RETURNING messages.id, messages.room_id, messages.seq
    ),
    marked AS (
        UPDATE memberships SET last_read_seq = x.seq
        FROM (SELECT p.r, p.s, max(p.seq) AS seq FROM planned p GROUP BY p.r, p.s) x
        WHERE memberships.room_id = x.r AND memberships.user_id = x.s
        RETURNING 1
    )
    SELECT inp.i,
           (CASE WHEN NOT inp.member THEN 2
                 WHEN inp.old_id IS NOT NULL OR inp.first <> inp.i THEN 1
                 ELSE 0 END)::smallint,
           CASE WHEN inp.member AND inp.old_id IS NULL AND inp.first <> inp.i THEN inp.first END,
           COALESCE(ins.id, o.id),
           COALESCE(p.seq, o.seq),
           COALESCE(p.s, o.sender_id),
           COALESCE(pu.username, ou.username),
           COALESCE(p.name, orm.name),
           COALESCE(p.c, o.content),
           COALESCE(p.at, o.created_at),
           COALESCE(p.k, o.client_msg_id)
    FROM input inp
    LEFT JOIN planned p ON p.i = inp.i
    LEFT JOIN inserted ins ON ins.room_id = p.r AND ins.seq = p.seq
    LEFT JOIN users pu ON pu.id = p.s
    LEFT JOIN messages o ON o.id = inp.old_id AND inp.member
    LEFT JOIN users ou ON ou.id = o.sender_id
    LEFT JOIN rooms orm ON orm.id = o.room_id
    ORDER BY inp.i;
END
$$;
