//! The `rooms` and `memberships` tables: [`RoomRepository`].

use super::in_ids::in_ids;
use super::schema::{memberships, rooms, users};
use super::users::parse_uuid;
use super::{Db, TxError, from_millis, to_millis};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use webchat_domain::model::{
    ListedRoom, Listing, Members, Page, Room, RoomId, RoomListQuery, RoomName, Seq, UserId, Username,
};
use webchat_domain::ports::{ListDone, RoomRepository, StoreResult};
use webchat_domain::{StoreError, UniqueField};

#[derive(Queryable, Selectable)]
#[diesel(table_name = rooms)]
pub(super) struct RoomRow {
    id: i64,
    name: String,
    created_at: i64,
    last_seq: i64,
    last_activity_at: i64,
}

impl From<RoomRow> for Room {
    fn from(r: RoomRow) -> Self {
        Room {
            id: RoomId(r.id),
            name: RoomName::from_trusted(r.name),
            created_at: from_millis(r.created_at),
            last_seq: Seq(r.last_seq),
            last_activity_at: from_millis(r.last_activity_at),
        }
    }
}

fn find_room(c: &mut super::DbConnection, name_lower: &str) -> QueryResult<Option<RoomRow>> {
    rooms::table.filter(rooms::name_lower.eq(name_lower)).select(RoomRow::as_select()).first(c).optional()
}

/// Moves `room` to a new `members_rev` (see [`super::members`]), in the transaction that
/// changes its members.
fn members_changed(c: &mut super::DbConnection, room: i64) -> QueryResult<usize> {
    diesel::update(rooms::table.find(room)).set(rooms::members_rev.eq(rooms::members_rev + 1)).execute(c)
}

/// [`members_changed`] for every room `user` (a users.id) is a member of: the account is
/// renamed or deleted. Before the memberships of a deleted account go.
pub(super) fn members_changed_for(c: &mut super::DbConnection, user: &str) -> QueryResult<usize> {
    let theirs = memberships::table.filter(memberships::user_id.eq(user)).select(memberships::room_id);
    diesel::update(rooms::table.filter(rooms::id.eq_any(theirs)))
        .set(rooms::members_rev.eq(rooms::members_rev + 1))
        .execute(c)
}

/// A page as SQL's `LIMIT` and `OFFSET`.
fn limits(page: Page) -> (i64, i64) {
    (i64::from(page.limit), i64::try_from(page.offset).unwrap_or(i64::MAX))
}

impl super::Core {
    /// The member list of each `(room, members_rev)`: from memory where this node holds the
    /// list of that rev, in one query for all the others.
    pub(super) fn member_lists(&self, revs: Vec<(i64, i64)>) -> StoreResult<HashMap<i64, Members>> {
        let mut known: HashMap<i64, Members> = HashMap::with_capacity(revs.len());
        let mut missing: Vec<(i64, i64)> = Vec::new();
        for (room, rev) in revs {
            match self.members.get(RoomId(room), rev) {
                Some(list) => {
                    known.insert(room, list);
                }
                None => missing.push((room, rev)),
            }
        }
        if missing.is_empty() {
            return Ok(known);
        }
        let wanted: Vec<i64> = missing.iter().map(|(room, _)| *room).collect();
        let rows: Vec<(i64, i64, String, String)> = self.read(|c| {
            memberships::table
                .inner_join(users::table)
                .inner_join(rooms::table)
                .filter(in_ids(memberships::room_id, &wanted))
                .select((memberships::room_id, rooms::members_rev, users::id, users::username))
                .order((memberships::room_id, memberships::joined_at.asc(), users::username_lower.asc()))
                .load(c)
        })?;
        // Read after the revs the caller holds, so never older than them: a room's list is
        // filed under the rev read with it, or (no member left) under the one read before.
        let mut read: HashMap<i64, (i64, Vec<(UserId, Username)>)> =
            missing.into_iter().map(|(room, rev)| (room, (rev, Vec::new()))).collect();
        for (room, rev, id, name) in rows {
            let entry = read.entry(room).or_insert_with(|| (rev, Vec::new()));
            entry.0 = rev;
            entry.1.push((UserId(parse_uuid(&id)?), Username::from_trusted(name)));
        }
        for (room, (rev, list)) in read {
            let list: Members = list.into();
            self.members.put(RoomId(room), rev, Arc::clone(&list));
            known.insert(room, list);
        }
        Ok(known)
    }
}

impl Db {
    fn try_join_or_create(
        &self,
        name: &RoomName,
        user: UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<(Room, bool)> {
        let lower = name.normalized();
        let user = user.to_string();
        let now = to_millis(now);
        // A member joining again (every reconnect of a socket) changes nothing: one read
        // instead of a write transaction.
        let known = self.read(|c| {
            rooms::table
                .left_join(
                    memberships::table
                        .on(memberships::room_id.eq(rooms::id).and(memberships::user_id.eq(&user))),
                )
                .filter(rooms::name_lower.eq(&lower))
                .select((RoomRow::as_select(), memberships::room_id.nullable()))
                .first::<(RoomRow, Option<i64>)>(c)
                .optional()
        })?;
        if let Some((room, Some(_))) = known {
            return Ok((Room::from(room), false));
        }
        self.write(|c| {
            let (room, created) = match find_room(c, &lower)? {
                Some(room) => (room, false),
                None => {
                    diesel::insert_into(rooms::table)
                        .values((
                            rooms::name.eq(name.as_str()),
                            rooms::name_lower.eq(&lower),
                            rooms::created_at.eq(now),
                            rooms::last_seq.eq(0),
                            rooms::last_activity_at.eq(now),
                        ))
                        .execute(c)?;
                    let room = find_room(c, &lower)?
                        .ok_or_else(|| TxError::Store(StoreError::Internal("room vanished".into())))?;
                    (room, true)
                }
            };
            let member = memberships::table
                .find((room.id, &user))
                .select(memberships::room_id)
                .first::<i64>(c)
                .optional()?;
            if member.is_none() {
                // A new member has read nothing yet but owes nothing either: history
                // from before the join does not count as unread.
                diesel::insert_into(memberships::table)
                    .values((
                        memberships::room_id.eq(room.id),
                        memberships::user_id.eq(&user),
                        memberships::joined_at.eq(now),
                        memberships::last_read_seq.eq(room.last_seq),
                    ))
                    .execute(c)?;
                members_changed(c, room.id)?;
            }
            Ok((Room::from(room), created))
        })
    }
}

impl RoomRepository for Db {
    fn find_by_name(&self, name: &RoomName) -> StoreResult<Option<Room>> {
        Ok(self.read(|c| find_room(c, &name.normalized()))?.map(Room::from))
    }

    fn join_or_create(&self, name: &RoomName, user: UserId, now: DateTime<Utc>) -> StoreResult<(Room, bool)> {
        match self.try_join_or_create(name, user, now) {
            // Two first joins raced to create the room: the loser joins the winner's room.
            Err(StoreError::Conflict(UniqueField::RoomName)) => self.try_join_or_create(name, user, now),
            other => other,
        }
    }

    fn leave(&self, room: RoomId, user: UserId) -> StoreResult<bool> {
        self.write(|c| {
            let left = diesel::delete(memberships::table.find((room.0, user.to_string()))).execute(c)? == 1;
            if left {
                members_changed(c, room.0)?;
            }
            Ok(left)
        })
    }

    fn list(&self, viewer: UserId, query: &RoomListQuery) -> StoreResult<Vec<ListedRoom>> {
        let (limit, offset) = limits(query.page);
        let viewer = viewer.to_string();
        // One question: the page, each room's `members_rev` (for the member lists kept in
        // memory) and the viewer's read marker; three round trips were most of the time a
        // listing took on PostgreSQL.
        let rows: Vec<(RoomRow, i64, Option<i64>)> = self.read(|c| {
            let page = rooms::table
                .left_join(
                    memberships::table
                        .on(memberships::room_id.eq(rooms::id).and(memberships::user_id.eq(&viewer))),
                )
                .select((RoomRow::as_select(), rooms::members_rev, memberships::last_read_seq.nullable()))
                .order((rooms::last_activity_at.desc(), rooms::id.desc()))
                .limit(limit)
                .offset(offset);
            if query.joined { page.filter(memberships::room_id.is_not_null()).load(c) } else { page.load(c) }
        })?;
        let mut lists =
            self.core.member_lists(rows.iter().map(|(room, rev, _)| (room.id, *rev)).collect())?;
        Ok(rows
            .into_iter()
            .map(|(room, _, marker)| ListedRoom {
                members: lists.remove(&room.id).unwrap_or_else(|| Arc::new([])),
                read_marker: marker.map(Seq),
                room: Room::from(room),
            })
            .collect())
    }

    fn list_then(&self, viewer: UserId, query: RoomListQuery, done: ListDone) {
        match &self.list_lane {
            Some(lane) => lane.submit((viewer, query), done, || {
                Err(StoreError::Unavailable("the store is shutting down".into()))
            }),
            None => {
                done(self.list(viewer, &query).map(|rooms| Listing { rooms, latest: None, online: None }))
            }
        }
    }

    fn joined(&self, user: UserId, page: Page) -> StoreResult<Vec<Room>> {
        let (limit, offset) = limits(page);
        let rows = self.read(|c| {
            rooms::table
                .inner_join(memberships::table)
                .filter(memberships::user_id.eq(user.to_string()))
                .select(RoomRow::as_select())
                .order((rooms::last_activity_at.desc(), rooms::id.desc()))
                .limit(limit)
                .offset(offset)
                .load(c)
        })?;
        Ok(rows.into_iter().map(Room::from).collect())
    }

    fn members(&self, rooms: &[RoomId]) -> StoreResult<Vec<(RoomId, UserId, Username)>> {
        let ids: Vec<i64> = rooms.iter().map(|r| r.0).collect();
        let revs: Vec<(i64, i64)> = self.read(|c| {
            rooms::table.filter(in_ids(rooms::id, &ids)).select((rooms::id, rooms::members_rev)).load(c)
        })?;
        let mut known = self.core.member_lists(revs)?;
        // In the order asked, each room once.
        Ok(rooms
            .iter()
            .filter_map(|room| known.remove(&room.0).map(|list| (*room, list)))
            .flat_map(|(room, list)| {
                list.iter().map(|(id, name)| (room, *id, name.clone())).collect::<Vec<_>>()
            })
            .collect())
    }

    fn read_markers(&self, user: UserId, rooms: &[RoomId]) -> StoreResult<Vec<(RoomId, Seq)>> {
        let ids: Vec<i64> = rooms.iter().map(|r| r.0).collect();
        let rows: Vec<(i64, i64)> = self.read(|c| {
            memberships::table
                .filter(memberships::user_id.eq(user.to_string()))
                .filter(in_ids(memberships::room_id, &ids))
                .select((memberships::room_id, memberships::last_read_seq))
                .load(c)
        })?;
        Ok(rows.into_iter().map(|(r, s)| (RoomId(r), Seq(s))).collect())
    }

    fn mark_read(&self, room: RoomId, user: UserId, seq: Seq) -> StoreResult<bool> {
        let user = user.to_string();
        self.write(|c| {
            let membership = memberships::table.find((room.0, &user));
            // Conditional, so that of two concurrent marks the larger always wins.
            let moved = diesel::update(membership.filter(memberships::last_read_seq.lt(seq.0)))
                .set(memberships::last_read_seq.eq(seq.0))
                .execute(c)?;
            if moved == 1 {
                return Ok(true);
            }
            Ok(membership.select(memberships::room_id).first::<i64>(c).optional()?.is_some())
        })
    }
}
