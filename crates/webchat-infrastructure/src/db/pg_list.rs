//! Room listings answered together on PostgreSQL: the reader thread takes every
//! `GET /api/rooms/` queued while it was busy and answers them with one statement, then one
//! read of the member lists and one of the last messages (per window size asked) that
//! memory does not hold; the last messages go to each listing with its page.
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
use webchat_domain::model::{
    LatestMessages, ListedRoom, Listing, Room, RoomId, RoomListQuery, RoomName, Seq, UserId,
};
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
    pub(super) fn list_batch(&self, batch: &[(UserId, RoomListQuery)]) -> Vec<StoreResult<Listing>> {
        match self.try_list_batch(batch) {
            Ok(answers) => answers.into_iter().map(Ok).collect(),
            Err(e) => batch.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    fn try_list_batch(&self, batch: &[(UserId, RoomListQuery)]) -> StoreResult<Vec<Listing>> {
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
        let listing_of = |row: &PageRow| usize::try_from(row.idx - 1).ok().filter(|i| *i < batch.len());
        if let Some(row) = rows.iter().find(|r| listing_of(r).is_none()) {
            return Err(StoreError::Internal(format!(
                "a listing answered for listing {} of {}",
                row.idx,
                batch.len()
            )));
        }
        let revs: HashMap<i64, i64> = rows.iter().map(|r| (r.id, r.members_rev)).collect();
        let lists = self.member_lists(revs.into_iter().collect())?;
        let mut latest = self.latest_of(batch, &rows);
        let mut online = self.online_of(batch.len(), &rows);
        let mut answers: Vec<Vec<ListedRoom>> = batch.iter().map(|_| Vec::new()).collect();
        for row in rows {
            let Some(i) = listing_of(&row) else { continue };
            answers[i].push(ListedRoom {
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
        Ok(answers
            .into_iter()
            .enumerate()
            .map(|(i, rooms)| Listing { rooms, latest: latest[i].take(), online: online[i].take() })
            .collect())
    }

    /// Who is online in each listing's rooms, in one read for all of them, where presence
    /// is the store's ([`super::DbOptions::listing_presence`]). `None` where it is not, or
    /// for all when the read failed (each use case then asks its presence reader).
    fn online_of(&self, listings: usize, rows: &[PageRow]) -> Vec<Option<Vec<(RoomId, UserId)>>> {
        let Some(ttl) = self.listing_presence else { return vec![None; listings] };
        let mut rooms: Vec<RoomId> = rows.iter().map(|r| RoomId(r.id)).collect();
        rooms.sort_unstable_by_key(|r| r.0);
        rooms.dedup();
        let since = chrono::Utc::now() - chrono::Duration::from_std(ttl).unwrap_or_default();
        let present = if rooms.is_empty() { Ok(Vec::new()) } else { self.active(&rooms, since) };
        let Ok(present) = present else { return vec![None; listings] };
        let mut by_room: HashMap<RoomId, Vec<UserId>> = HashMap::new();
        for (room, user) in present {
            by_room.entry(room).or_default().push(user);
        }
        let mut online: Vec<Option<Vec<(RoomId, UserId)>>> = vec![Some(Vec::new()); listings];
        for row in rows {
            let Some(Some(of_listing)) = usize::try_from(row.idx - 1).ok().and_then(|i| online.get_mut(i))
            else {
                continue;
            };
            let room = RoomId(row.id);
            of_listing.extend(by_room.get(&room).into_iter().flatten().map(|user| (room, *user)));
        }
        online
    }

    /// The last messages of each listing's rooms, read along with the page (so the views
    /// need no read of their own): one read per window size asked, from memory
    /// ([`super::recent`]) where it holds them. `None` for the listings whose read failed:
    /// their use case reads again and meets the failure itself.
    fn latest_of(
        &self,
        batch: &[(UserId, RoomListQuery)],
        rows: &[PageRow],
    ) -> Vec<Option<Vec<(RoomId, LatestMessages)>>> {
        let mut wanted: HashMap<u32, Vec<(RoomId, Seq)>> = HashMap::new();
        let mut of_listing: Vec<Vec<RoomId>> = batch.iter().map(|_| Vec::new()).collect();
        for row in rows.iter().filter(|r| r.last_seq > 0) {
            let Some(i) = usize::try_from(row.idx - 1).ok().filter(|i| *i < batch.len()) else { continue };
            let per_room = batch[i].1.messages;
            if per_room > 0 {
                wanted.entry(per_room).or_default().push((RoomId(row.id), Seq(row.last_seq)));
                of_listing[i].push(RoomId(row.id));
            }
        }
        let mut read: HashMap<u32, Option<HashMap<RoomId, LatestMessages>>> = HashMap::new();
        for (per_room, mut rooms) in wanted {
            rooms.sort_unstable_by_key(|(room, _)| room.0);
            rooms.dedup();
            read.insert(
                per_room,
                self.latest(&rooms, per_room).ok().map(|found| found.into_iter().collect()),
            );
        }
        batch
            .iter()
            .zip(of_listing)
            .map(|((_, query), rooms)| {
                if query.messages == 0 {
                    return Some(Vec::new());
                }
                let Some(Some(found)) = read.get(&query.messages) else {
                    // No room of this listing has messages, or their read failed.
                    return if rooms.is_empty() { Some(Vec::new()) } else { None };
                };
                Some(rooms.iter().filter_map(|room| Some((*room, found.get(room)?.clone()))).collect())
            })
            .collect()
    }
}
