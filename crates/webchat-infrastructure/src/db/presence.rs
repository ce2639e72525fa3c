//! The `presence` table: [`PresenceStore`], cluster-wide presence with heartbeats.

use super::in_ids::in_ids;
use super::schema::{presence, rooms, users};
use super::users::parse_uuid;
use super::{Db, to_millis};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;
use webchat_domain::StoreError;
use webchat_domain::model::{RoomId, RoomName, UserId, Username};
use webchat_domain::ports::{PresenceStore, StoreResult};

impl PresenceStore for Db {
    fn enter(&self, node: Uuid, room: RoomId, user: UserId, now: DateTime<Utc>) -> StoreResult<()> {
        self.record(node, &[(room, user)], &[], now)
    }

    fn leave(&self, node: Uuid, room: RoomId, user: UserId) -> StoreResult<()> {
        // Nothing is entered, so no time is written.
        self.record(node, &[], &[(room, user)], Utc::now())
    }

    fn elsewhere(&self, node: Uuid, room: RoomId, user: UserId, since: DateTime<Utc>) -> StoreResult<bool> {
        let found = self.read(|c| {
            presence::table
                .filter(presence::room_id.eq(room.0))
                .filter(presence::user_id.eq(user.to_string()))
                .filter(presence::node_id.ne(node.to_string()))
                .filter(presence::seen_at.ge(to_millis(since)))
                .select(presence::node_id)
                .first::<String>(c)
                .optional()
        })?;
        Ok(found.is_some())
    }

    fn record(
        &self,
        node: Uuid,
        entered: &[(RoomId, UserId)],
        left: &[(RoomId, UserId)],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        if entered.is_empty() && left.is_empty() {
            return Ok(());
        }
        match self.record_once(node, entered, left, now) {
            // A row appeared between our UPDATE and INSERT: the second pass updates it.
            Err(StoreError::Conflict(_)) => self.record_once(node, entered, left, now),
            other => other,
        }
    }

    fn elsewhere_among(
        &self,
        node: Uuid,
        pairs: &[(RoomId, UserId)],
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(RoomId, UserId)>> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let mut rooms: Vec<i64> = pairs.iter().map(|(r, _)| r.0).collect();
        rooms.sort_unstable();
        rooms.dedup();
        // Everyone seen elsewhere in those rooms, then the pairs asked about among them.
        let rows: Vec<(i64, String)> = self.read(|c| {
            presence::table
                .filter(in_ids(presence::room_id, &rooms))
                .filter(presence::node_id.ne(node.to_string()))
                .filter(presence::seen_at.ge(to_millis(since)))
                .select((presence::room_id, presence::user_id))
                .distinct()
                .load(c)
        })?;
        let found: std::collections::HashSet<(i64, String)> = rows.into_iter().collect();
        Ok(pairs.iter().filter(|(r, u)| found.contains(&(r.0, u.to_string()))).copied().collect())
    }

    fn heartbeat(&self, node: Uuid, now: DateTime<Utc>) -> StoreResult<usize> {
        self.write(|c| {
            Ok(diesel::update(presence::table.filter(presence::node_id.eq(node.to_string())))
                .set(presence::seen_at.eq(to_millis(now)))
                .execute(c)?)
        })
    }

    fn expire(&self, before: DateTime<Utc>) -> StoreResult<Vec<(RoomId, RoomName, UserId, Username)>> {
        let cutoff = to_millis(before);
        let rows: Vec<(String, i64, String, String, String)> = self.write(|c| {
            let stale: Vec<(String, i64, String, String, String)> = presence::table
                .inner_join(rooms::table)
                .inner_join(users::table)
                .filter(presence::seen_at.lt(cutoff))
                .select((
                    presence::node_id,
                    presence::room_id,
                    presence::user_id,
                    rooms::name,
                    users::username,
                ))
                .load(c)?;
            let mut gone = Vec::new();
            for row in stale {
                // Only the node whose delete took the row announces it.
                let deleted = diesel::delete(
                    presence::table.find((&row.0, row.1, &row.2)).filter(presence::seen_at.lt(cutoff)),
                )
                .execute(c)?;
                if deleted == 1 {
                    gone.push(row);
                }
            }
            let mut offline = Vec::new();
            for row in gone {
                let left = presence::table
                    .filter(presence::room_id.eq(row.1))
                    .filter(presence::user_id.eq(&row.2))
                    .select(presence::node_id)
                    .first::<String>(c)
                    .optional()?;
                if left.is_none() {
                    offline.push(row);
                }
            }
            Ok(offline)
        })?;
        rows.into_iter()
            .map(|(_, room, user, room_name, username)| {
                Ok((
                    RoomId(room),
                    RoomName::from_trusted(room_name),
                    UserId(parse_uuid(&user)?),
                    Username::from_trusted(username),
                ))
            })
            .collect()
    }

    fn active(&self, rooms: &[RoomId], since: DateTime<Utc>) -> StoreResult<Vec<(RoomId, UserId)>> {
        self.core.active(rooms, since)
    }
}

impl super::Core {
    /// [`PresenceStore::active`].
    pub(super) fn active(
        &self,
        rooms: &[RoomId],
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(RoomId, UserId)>> {
        let ids: Vec<i64> = rooms.iter().map(|r| r.0).collect();
        let rows: Vec<(i64, String)> = self.read(|c| {
            presence::table
                .filter(in_ids(presence::room_id, &ids))
                .filter(presence::seen_at.ge(to_millis(since)))
                .select((presence::room_id, presence::user_id))
                .distinct()
                .load(c)
        })?;
        rows.into_iter().map(|(room, user)| Ok((RoomId(room), UserId(parse_uuid(&user)?)))).collect()
    }
}

impl Db {
    /// [`PresenceStore::record`] in one transaction: row by row (the store speaks to both
    /// backends, and the statements are prepared once), but one commit, whose fsync was the
    /// cost of a burst of sockets.
    fn record_once(
        &self,
        node: Uuid,
        entered: &[(RoomId, UserId)],
        left: &[(RoomId, UserId)],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let node = node.to_string();
        let seen = to_millis(now);
        self.write(|c| {
            for (room, user) in entered {
                let key = presence::table.find((&node, room.0, user.to_string()));
                if diesel::update(key).set(presence::seen_at.eq(seen)).execute(c)? == 0 {
                    diesel::insert_into(presence::table)
                        .values((
                            presence::node_id.eq(&node),
                            presence::room_id.eq(room.0),
                            presence::user_id.eq(user.to_string()),
                            presence::seen_at.eq(seen),
                        ))
                        .execute(c)?;
                }
            }
            for (room, user) in left {
                diesel::delete(presence::table.find((&node, room.0, user.to_string()))).execute(c)?;
            }
            Ok(())
        })
    }
}
