-- webchat_append_batch again (first in 2026-12-01-000003_append_batch; same arguments,
-- same rows, same rules), now in time linear in the batch, with one plan kept per session.
--
-- The first version joined its CTEs to one another (fresh with bumped, planned with
-- inserted, input with planned). With hash and merge joins off, each of those was a nested
-- loop over a CTE scan: quadratic in the batch, 13 ms for 128 messages where this one takes
-- 8.8 (pgbench, one backend, family-25 machine). Batches grow exactly when PostgreSQL is
-- busy, so the quadratic term fed on itself (W4, docs/benchmarks.md). Here the room's last
-- seq is read with the message (the room's row is locked by the statement before, so the
-- value read is the one the UPDATE changes), ids come from the sequence up front, and the
-- answer is read off that one row set: no CTE is joined to another.
--
-- The plan is generic (`plan_cache_mode`): left to choose, the plan cache planned the long
-- statement anew on each call, 0.8 ms of every batch (a batch of one took 1.35 ms, 0.54
-- with the plan kept). Its shape does not depend on the arrays' sizes: nested loops over
-- the indexes, as before, and no sequential scan: with the arrays unknown, the generic plan
-- of the lock below read all of rooms (500 rows in W4, each updated thousands of times a
-- second, so many pages of dead versions) rather than its primary key.
CREATE OR REPLACE FUNCTION webchat_append_batch(
    p_room bigint[], p_sender text[], p_content text[], p_created bigint[], p_key text[]
) RETURNS TABLE (
    idx bigint, outcome smallint, dup_of bigint, id bigint, seq bigint, sender_id text,
    username text, room_name text, content text, created_at bigint, client_msg_id text
) LANGUAGE plpgsql
SET enable_hashjoin = off
SET enable_mergejoin = off
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
BEGIN
    -- Rooms locked in id order: batches of two nodes that share rooms queue, never deadlock.
    -- NO KEY UPDATE is the lock the UPDATE below takes anyway (see 000003 for why not FOR
    -- UPDATE). Held from here, it makes the last_seq read below the current one.
    PERFORM 1 FROM rooms r WHERE r.id = ANY(p_room) ORDER BY r.id FOR NO KEY UPDATE;
    RETURN QUERY
    WITH input AS (
        SELECT t.r, t.s, t.c, t.at, t.k, t.i,
               mb.user_id IS NOT NULL AS member,
               old.id AS old_id,
               rm.last_seq AS base, rm.name AS name,
               CASE WHEN t.k IS NULL THEN t.i
                    ELSE min(t.i) OVER (PARTITION BY t.r, t.s, t.k) END AS first
        FROM unnest(p_room, p_sender, p_content, p_created, p_key) WITH ORDINALITY AS t(r, s, c, at, k, i)
        LEFT JOIN rooms rm ON rm.id = t.r
        LEFT JOIN memberships mb ON mb.room_id = t.r AND mb.user_id = t.s
        LEFT JOIN messages old ON old.room_id = t.r AND old.sender_id = t.s AND old.client_msg_id = t.k
    ),
    -- fresh: stored now. Each room's fresh messages take its next seqs in batch order.
    planned AS (
        SELECT d.*,
               CASE WHEN d.fresh
                    THEN d.base + row_number() OVER (PARTITION BY d.r, d.fresh ORDER BY d.i) END AS seq,
               CASE WHEN d.fresh THEN nextval('messages_id_seq') END AS new_id
        FROM (SELECT inp.*, (inp.member AND inp.old_id IS NULL AND inp.first = inp.i) AS fresh
              FROM input inp) d
    ),
    bumped AS (
        UPDATE rooms SET last_seq = rooms.last_seq + g.cnt, last_activity_at = g.at
        FROM (SELECT p.r, count(*) AS cnt, max(p.at) AS at FROM planned p WHERE p.fresh GROUP BY p.r) g
        WHERE rooms.id = g.r
    ),
    inserted AS (
        INSERT INTO messages (id, room_id, seq, sender_id, content, created_at, client_msg_id)
        SELECT p.new_id, p.r, p.seq, p.s, p.c, p.at, p.k FROM planned p WHERE p.fresh
    ),
    marked AS (
        UPDATE memberships SET last_read_seq = x.seq
        FROM (SELECT p.r, p.s, max(p.seq) AS seq FROM planned p WHERE p.fresh GROUP BY p.r, p.s) x
        WHERE memberships.room_id = x.r AND memberships.user_id = x.s
    )
    SELECT p.i,
           (CASE WHEN NOT p.member THEN 2 WHEN NOT p.fresh THEN 1 ELSE 0 END)::smallint,
           CASE WHEN p.member AND p.old_id IS NULL AND p.first <> p.i THEN p.first END,
           COALESCE(p.new_id, o.id),
           COALESCE(p.seq, o.seq),
           CASE WHEN p.fresh THEN p.s ELSE o.sender_id END,
           u.username,
           CASE WHEN p.fresh THEN p.name ELSE orm.name END,
           CASE WHEN p.fresh THEN p.c ELSE o.content END,
           CASE WHEN p.fresh THEN p.at ELSE o.created_at END,
           CASE WHEN p.fresh THEN p.k ELSE o.client_msg_id END
    FROM planned p
    LEFT JOIN messages o ON o.id = p.old_id AND p.member
    LEFT JOIN users u ON u.id = CASE WHEN p.fresh THEN p.s ELSE o.sender_id END
    LEFT JOIN rooms orm ON orm.id = o.room_id
    ORDER BY p.i;
END
$$;
