//! The `messages` table: [`MessageRepository`], the per-room logs.

use super::pg_batch;
use super::schema::{memberships, messages, rooms, users};
use super::users::parse_uuid;
use super::{Core, Db, DbConnection, TxError, from_millis, to_millis};
use diesel::prelude::*;
use std::sync::Arc;
use std::time::Instant;
use webchat_domain::model::{
    Appended, ClientMsgId, HistoryCursor, HistoryPage, LatestMessages, Message, MessageContent, MessageId,
    NewMessage, RoomId, RoomName, Seq, UserId, Username,
};
use webchat_domain::ports::{AppendDone, MessageRepository, StoreResult};
use webchat_domain::{StoreError, UniqueField};

#[derive(Queryable, Selectable)]
#[diesel(table_name = messages)]
struct MessageRow {
    id: i64,
    room_id: i64,
    seq: i64,
    sender_id: Option<String>,
    content: String,
    created_at: i64,
    client_msg_id: Option<String>,
}

/// A message row with its sender's name and its room's name.
type Joined = (MessageRow, Option<String>, String);

fn into_message((row, sender, room): Joined) -> StoreResult<Message> {
    Ok(Message {
        id: MessageId(row.id),
        room_id: RoomId(row.room_id),
        room: RoomName::from_trusted(room),
        seq: Seq(row.seq),
        sender_id: row.sender_id.as_deref().map(parse_uuid).transpose()?.map(UserId),
        sender: sender.map(Username::from_trusted),
        content: MessageContent::from_trusted(row.content),
        created_at: from_millis(row.created_at),
        client_msg_id: row.client_msg_id.map(ClientMsgId::from_trusted),
    })
}

/// The base query every read shares: messages with sender and room names.
macro_rules! joined {
    () => {
        messages::table.left_join(users::table).inner_join(rooms::table).select((
            MessageRow::as_select(),
            users::username.nullable(),
            rooms::name,
        ))
    };
}

fn find_by_client_id(c: &mut DbConnection, m: &NewMessage, key: &ClientMsgId) -> QueryResult<Option<Joined>> {
    joined!()
        .filter(messages::room_id.eq(m.room_id.0))
        .filter(messages::sender_id.eq(m.sender_id.to_string()))
        .filter(messages::client_msg_id.eq(key.as_str()))
        .first(c)
        .optional()
}

/// Appends one message inside an open transaction: a lone append, and every message of a
/// SQLite batch (one transaction, so one fsync for the batch; statements are in-process).
fn append_in(c: &mut DbConnection, m: &NewMessage) -> Result<Appended, TxError> {
    let member = memberships::table
        .find((m.room_id.0, m.sender_id.to_string()))
        .select(memberships::room_id)
        .first::<i64>(c)
        .optional()?
        .is_some();
    if !member {
        return Ok(Appended::NotAMember);
    }
    if let Some(key) = &m.client_msg_id
        && let Some(existing) = find_by_client_id(c, m, key)?
    {
        return Ok(Appended::Duplicate(into_message(existing).map_err(TxError::Store)?));
    }
    let now = to_millis(m.created_at);
    // The row lock on the room orders concurrent senders; the seq comes from the same
    // transaction as the insert, so a rollback leaves no gap.
    let seq: i64 = diesel::update(rooms::table.find(m.room_id.0))
        .set((rooms::last_seq.eq(rooms::last_seq + 1), rooms::last_activity_at.eq(now)))
        .returning(rooms::last_seq)
        .get_result(c)
        .optional()?
        .ok_or_else(|| TxError::Store(StoreError::Internal(format!("room {} vanished", m.room_id.0))))?;
    let id: i64 = diesel::insert_into(messages::table)
        .values((
            messages::room_id.eq(m.room_id.0),
            messages::seq.eq(seq),
            messages::sender_id.eq(m.sender_id.to_string()),
            messages::content.eq(m.content.as_str()),
            messages::created_at.eq(now),
            messages::client_msg_id.eq(m.client_msg_id.as_ref().map(ClientMsgId::as_str)),
        ))
        .returning(messages::id)
        .get_result(c)?;
    // Whoever writes a message has read the room up to it.
    diesel::update(memberships::table.find((m.room_id.0, m.sender_id.to_string())))
        .set(memberships::last_read_seq.eq(seq))
        .execute(c)?;
    let row = joined!().filter(messages::id.eq(id)).first(c)?;
    Ok(Appended::Stored(into_message(row).map_err(TxError::Store)?))
}

impl Core {
    /// One message in its own transaction.
    fn append_one(&self, m: &NewMessage) -> StoreResult<Appended> {
        match self.write(|c| append_in(c, m)) {
            // A resend raced its original on another connection: answer with the original.
            Err(StoreError::Conflict(UniqueField::ClientMsgId)) => {
                let key = m
                    .client_msg_id
                    .as_ref()
                    .ok_or_else(|| StoreError::Internal("conflict without key".into()))?;
                let found = self.read(|c| find_by_client_id(c, m, key))?;
                let found =
                    found.ok_or_else(|| StoreError::Internal("conflicting message vanished".into()))?;
                Ok(Appended::Duplicate(into_message(found)?))
            }
            other => other,
        }
    }

    /// A group commit's batch: every message in one transaction, results in batch order.
    /// When the batch fails as a whole (a resend racing its original on another node, a
    /// deadlock with another node's batch, a user deleted meanwhile), each message is
    /// retried alone, so one bad message never fails the others.
    ///
    /// On PostgreSQL a batch of one takes the same single statement: a lone message's own
    /// transaction is eight round trips (BEGIN, five statements, the read back, COMMIT), each
    /// a wake-up of this thread and of the database's backend, which under load cost a send
    /// more than its commit did (W2: append p50 1.9 ms, p99 8–9.5 ms).
    pub(super) fn append_batch(&self, batch: &[NewMessage]) -> Vec<StoreResult<Appended>> {
        if let [one] = batch
            && self.is_sqlite()
        {
            return vec![self.append_one(one)];
        }
        let together = if self.is_sqlite() {
            self.write(|c| batch.iter().map(|m| append_in(c, m)).collect())
        } else {
            // One statement, atomic on its own: no BEGIN and COMMIT round trips.
            self.run(|c| match c {
                DbConnection::Pg(pg) => pg_batch::append(pg, batch),
                DbConnection::Sqlite(_) => Err(TxError::Store(StoreError::Internal("not PostgreSQL".into()))),
            })
        };
        match together {
            Ok(results) => results.into_iter().map(Ok).collect(),
            Err(e @ StoreError::Unavailable(_)) => batch.iter().map(|_| Err(e.clone())).collect(),
            Err(e) => {
                tracing::debug!(error = %e, size = batch.len(), "batch append failed; appending one by one");
                batch.iter().map(|m| self.append_one(m)).collect()
            }
        }
    }
}

/// The answer to an append made while the store shuts down.
fn closed() -> StoreResult<Appended> {
    Err(StoreError::Unavailable("the store is shutting down".into()))
}

impl MessageRepository for Db {
    fn append(&self, m: &NewMessage) -> StoreResult<Appended> {
        self.lane(m.room_id).submit_and_wait(m.clone(), closed)
    }

    fn append_then(&self, m: NewMessage, done: AppendDone) {
        self.lane(m.room_id).submit(m, done, closed);
    }

    fn page(&self, room: RoomId, cursor: HistoryCursor, limit: u32) -> StoreResult<HistoryPage> {
        let take = i64::from(limit) + 1;
        let mut rows: Vec<Joined> = self.read(|c| {
            let q = joined!().filter(messages::room_id.eq(room.0));
            match cursor {
                HistoryCursor::Latest => q.order(messages::seq.desc()).limit(take).load(c),
                HistoryCursor::Before(s) => {
                    q.filter(messages::seq.lt(s.0)).order(messages::seq.desc()).limit(take).load(c)
                }
                HistoryCursor::After(s) => {
                    q.filter(messages::seq.gt(s.0)).order(messages::seq.asc()).limit(take).load(c)
                }
            }
        })?;
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        if !matches!(cursor, HistoryCursor::After(_)) {
            rows.reverse();
        }
        let messages = rows.into_iter().map(into_message).collect::<StoreResult<_>>()?;
        Ok(HistoryPage { messages, has_more })
    }

    fn latest(&self, wanted: &[(RoomId, Seq)], per_room: u32) -> StoreResult<Vec<(RoomId, LatestMessages)>> {
        self.core.latest(wanted, per_room)
    }
}

impl super::Core {
    /// [`MessageRepository::latest`], from [`super::recent`] where it can.
    pub(super) fn latest(
        &self,
        wanted: &[(RoomId, Seq)],
        per_room: u32,
    ) -> StoreResult<Vec<(RoomId, LatestMessages)>> {
        if wanted.is_empty() || per_room == 0 {
            return Ok(Vec::new());
        }
        let count = usize::try_from(per_room).unwrap_or(usize::MAX);
        let now = Instant::now();
        let mut found = Vec::with_capacity(wanted.len());
        let mut missing = Vec::new();
        for &(room, last) in wanted {
            match self.recent.get(room, last, per_room, now) {
                Some(kept) => found.push((room, LatestMessages::last_of(kept, count))),
                None => missing.push((room, last)),
            }
        }
        if !missing.is_empty() {
            let ticket = self.recent.ticket();
            // seq is gap-free, so "the last n" is the range above last_seq - n: one indexed
            // range per room, all in one query.
            let rows: Vec<Joined> = self.read(|c| {
                let mut q = joined!().into_boxed();
                for (room, last) in &missing {
                    q = q.or_filter(
                        messages::room_id
                            .eq(room.0)
                            .and(messages::seq.gt(last.0 - i64::from(per_room)))
                            .and(messages::seq.le(last.0)),
                    );
                }
                q.order((messages::room_id.asc(), messages::seq.asc())).load(c)
            })?;
            let read: Vec<Message> = rows.into_iter().map(into_message).collect::<StoreResult<_>>()?;
            for room in read.chunk_by(|a, b| a.room_id == b.room_id) {
                if let Some(&(id, last)) = missing.iter().find(|(id, _)| *id == room[0].room_id) {
                    let shared: Arc<[Message]> = room.into();
                    self.recent.put(ticket, id, last, per_room, Arc::clone(&shared), now);
                    found.push((id, LatestMessages::last_of(shared, count)));
                }
            }
        }
        Ok(found)
    }
}
