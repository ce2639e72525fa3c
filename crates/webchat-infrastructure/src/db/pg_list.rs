//! Room listings answered together on PostgreSQL: the reader thread takes every
//! `GET /api/rooms/` queued while it was busy and answers them with one statement, then one
//! read of the member lists and one of the last messages that memory does not hold.
//!
//! One listing alone is one short query, yet a pooled thread slept through its round trip
//! and two thread hand-overs came with it: at 10,000 listings a second that was most of
//! the server's core (docs/benchmarks.md, W6). Each listing keeps its own snapshot rules:
//! its page comes from one statement, its member lists are read after it (never older),
//! like [`RoomRepository::list`](webchat_domain::ports::RoomRepository::list).

use super::{Core, from_millis};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Untyped};
use std::collections::HashMap;
use std::sync::Arc;
use webchat_domain::StoreError;
use webchat_domain::model::{ListedRoom, Room, RoomId, RoomListQuery, RoomName, Seq, UserId};
use webchat_domain::ports::StoreResult;

/// Every listing's page: the rooms of listing `idx` (1-based), in page order. A listing of
/// joined rooms starts from the viewer's memberships; the others from the rooms by activity.
/// (After `unnest(` and the four arrays: viewers, joined, limits, offsets.)
const PAGES: &str = "\
             WITH ORDINALITY AS v(viewer, joined, lim, off, idx)) \
SELECT v.idx, r.* FROM v CROSS JOIN LATERAL ( \
    SELECT rooms.id, rooms.name, rooms.created_at, rooms.last_seq, rooms.last_activity_at, \
           rooms.members_rev, memberships.last_read_seq \
    FROM rooms LEFT JOIN memberships \
      ON memberships.room_id = rooms.id AND memberships.user_id = v.viewer \
    ORDER BY rooms.last_activity_at DESC, rooms.id DESC LIMIT v.lim OFFSET v.off) r \
WHERE NOT v.joined \
UNION ALL \
SELECT v.idx, r.* FROM v CROSS JOIN LATERAL ( \
    SELECT rooms.id, rooms.name, rooms.created_at, rooms.last_seq, rooms.last_activity_at, \
           rooms.members_rev, memberships.last_read_seq \
    FROM memberships JOIN rooms ON rooms.id = memberships.room_id \
    WHERE memberships.user_id = v.viewer \
    ORDER BY rooms.last_activity_at DESC, rooms.id DESC LIMIT v.lim OFFSET v.off) r \
WHERE v.joined \
ORDER BY idx, last_activity_at DESC, id DESC";

#[derive(QueryableByName)]
struct PageRow {
    #[diesel(sql_type = BigInt)]
    idx: i64,
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    created_at: i64,
    #[diesel(sql_type = BigInt)]
    last_seq: i64,
    #[diesel(sql_type = BigInt)]
    last_activity_at: i64,
    #[diesel(sql_type = BigInt)]
    members_rev: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    last_read_seq: Option<i64>,
}

/// [`PAGES`] with its arrays bound: a statement diesel prepares once per connection (its
/// text never changes, so it has a static query id).
struct Pages<'a> {
    viewers: &'a [String],
    joined: &'a [bool],
    limits: &'a [i64],
    offsets: &'a [i64],
}

impl QueryId for Pages<'_> {
    type QueryId = Pages<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for Pages<'_> {
    type SqlType = Untyped;
}

impl QueryFragment<Pg> for Pages<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH v AS (SELECT * FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(self.viewers)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Bool>, _>(self.joined)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(self.limits)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(self.offsets)?;
        out.push_sql(") ");
        out.push_sql(PAGES);
        Ok(())
    }
}

impl RunQueryDsl<PgConnection> for Pages<'_> {}

impl Core {
    /// Answers `batch` (listings in arrival order), one answer per listing, in order.
    pub(super) fn list_batch(&self, batch: &[(UserId, RoomListQuery)]) -> Vec<StoreResult<Vec<ListedRoom>>> {
        match self.try_list_batch(batch) {
            Ok(answers) => answers.into_iter().map(Ok).collect(),
            Err(e) => batch.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    fn try_list_batch(&self, batch: &[(UserId, RoomListQuery)]) -> StoreResult<Vec<Vec<ListedRoom>>> {
        let viewers: Vec<String> = batch.iter().map(|(viewer, _)| viewer.to_string()).collect();
        let joined: Vec<bool> = batch.iter().map(|(_, q)| q.joined).collect();
        let limits: Vec<i64> = batch.iter().map(|(_, q)| i64::from(q.page.limit)).collect();
        let offsets: Vec<i64> =
            batch.iter().map(|(_, q)| i64::try_from(q.page.offset).unwrap_or(i64::MAX)).collect();
        let rows: Vec<PageRow> = self.read(|c| match c {
            super::DbConnection::Pg(c) => {
                Pages { viewers: &viewers, joined: &joined, limits: &limits, offsets: &offsets }.load(c)
            }
            super::DbConnection::Sqlite(_) => Err(diesel::result::Error::QueryBuilderError(
                "listings are batched on PostgreSQL only".into(),
            )),
        })?;
        let revs: HashMap<i64, i64> = rows.iter().map(|r| (r.id, r.members_rev)).collect();
        let lists = self.member_lists(revs.into_iter().collect())?;
        self.warm_latest(batch, &rows);
        let mut answers: Vec<Vec<ListedRoom>> = batch.iter().map(|_| Vec::new()).collect();
        for row in rows {
            let answer =
                usize::try_from(row.idx - 1).ok().and_then(|i| answers.get_mut(i)).ok_or_else(|| {
                    StoreError::Internal(format!(
                        "a listing answered for listing {} of {}",
                        row.idx,
                        batch.len()
                    ))
                })?;
            answer.push(ListedRoom {
                members: lists.get(&row.id).map_or_else(|| Arc::new([]) as _, Arc::clone),
                read_marker: row.last_read_seq.map(Seq),
                room: Room {
                    id: RoomId(row.id),
                    name: RoomName::from_trusted(row.name),
                    created_at: from_millis(row.created_at),
                    last_seq: Seq(row.last_seq),
                    last_activity_at: from_millis(row.last_activity_at),
                },
            });
        }
        Ok(answers)
    }

    /// Reads the last messages of the listed rooms into memory ([`super::recent`]), one
    /// read per window size asked, so that the views built from these listings find them
    /// there. A failure is left for that later read to meet and report.
    fn warm_latest(&self, batch: &[(UserId, RoomListQuery)], rows: &[PageRow]) {
        let mut windows: HashMap<u32, Vec<(RoomId, Seq)>> = HashMap::new();
        for row in rows.iter().filter(|r| r.last_seq > 0) {
            let Some((_, query)) = usize::try_from(row.idx - 1).ok().and_then(|i| batch.get(i)) else {
                continue;
            };
            if query.messages > 0 {
                windows.entry(query.messages).or_default().push((RoomId(row.id), Seq(row.last_seq)));
            }
        }
        for (per_room, mut wanted) in windows {
            wanted.sort_unstable_by_key(|(room, _)| room.0);
            wanted.dedup();
            let _ = self.latest(&wanted, per_room);
        }
    }
}
