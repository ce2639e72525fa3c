//! A group commit's batch of appends on PostgreSQL: one call of `webchat_append_batch`
//! (migrations/postgres/…_append_batch, rewritten by …_append_batch_linear to take time
//! linear in the batch with one plan kept per session), one round trip however many
//! messages and rooms the batch holds, with the arrays bound as parameters.
//!
//! A batch of one message takes it too. Per message, the lone path (`append_in`, kept for
//! SQLite and for retries after a failed batch) costs eight round trips with its BEGIN and
//! COMMIT, and the statements of a batch written out one by one were planned anew on every
//! call; the function keeps its plans for the session. The rules are those of the lone path (`append_in`): membership
//! checked in the transaction, `client_msg_id` deduplicated against the table and within
//! the batch, each room's seqs taken from `rooms.last_seq` under its row lock in batch
//! (arrival) order, and the sender's read marker moved to its newest message.

use super::users::parse_uuid;
use super::{TxError, from_millis, to_millis};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Nullable, SmallInt, Text, Untyped};
use webchat_domain::StoreError;
use webchat_domain::model::{
    Appended, ClientMsgId, Message, MessageContent, MessageId, NewMessage, RoomId, RoomName, Seq, UserId,
    Username,
};

#[derive(QueryableByName)]
struct Outcome {
    #[diesel(sql_type = BigInt)]
    idx: i64,
    #[diesel(sql_type = SmallInt)]
    outcome: i16,
    #[diesel(sql_type = Nullable<BigInt>)]
    dup_of: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    seq: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    sender_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    username: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    room_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    content: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    created_at: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    client_msg_id: Option<String>,
}

/// The call of `webchat_append_batch` as a statement diesel prepares once per connection
/// and keeps in its statement cache: its text never changes, so it has a static query id.
/// (`diesel::sql_query` marks itself unsafe to cache, so each call was parsed anew, a
/// round of parse, bind and describe in the server for every batch.) A migration that
/// changes the function's result columns must come with a restart of the nodes: PostgreSQL
/// refuses a prepared statement whose result type changed under it.
struct AppendBatch<'a> {
    rooms: &'a [i64],
    senders: &'a [String],
    contents: &'a [&'a str],
    created: &'a [i64],
    keys: &'a [Option<&'a str>],
}

impl QueryId for AppendBatch<'_> {
    type QueryId = AppendBatch<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for AppendBatch<'_> {
    type SqlType = Untyped;
}

impl QueryFragment<Pg> for AppendBatch<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT * FROM webchat_append_batch(");
        out.push_bind_param::<Array<BigInt>, _>(self.rooms)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(self.senders)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(self.contents)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(self.created)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(self.keys)?;
        out.push_sql(")");
        Ok(())
    }
}

impl RunQueryDsl<PgConnection> for AppendBatch<'_> {}

fn internal(what: String) -> TxError {
    TxError::Store(StoreError::Internal(what))
}

fn message_of(room: RoomId, o: Outcome) -> Result<Message, TxError> {
    let missing = |what: &str| internal(format!("webchat_append_batch gave no {what} for message {}", o.idx));
    Ok(Message {
        id: MessageId(o.id.ok_or_else(|| missing("id"))?),
        room_id: room,
        room: RoomName::from_trusted(o.room_name.clone().ok_or_else(|| missing("room name"))?),
        seq: Seq(o.seq.ok_or_else(|| missing("seq"))?),
        sender_id: o.sender_id.as_deref().map(parse_uuid).transpose().map_err(TxError::Store)?.map(UserId),
        sender: o.username.clone().map(Username::from_trusted),
        content: MessageContent::from_trusted(o.content.clone().ok_or_else(|| missing("content"))?),
        created_at: from_millis(o.created_at.ok_or_else(|| missing("time"))?),
        client_msg_id: o.client_msg_id.map(ClientMsgId::from_trusted),
    })
}

/// Appends `batch` in one statement (atomic on its own); one result per message, in order.
pub(super) fn append(c: &mut PgConnection, batch: &[NewMessage]) -> Result<Vec<Appended>, TxError> {
    let rooms: Vec<i64> = batch.iter().map(|m| m.room_id.0).collect();
    let senders: Vec<String> = batch.iter().map(|m| m.sender_id.to_string()).collect();
    let contents: Vec<&str> = batch.iter().map(|m| m.content.as_str()).collect();
    let created: Vec<i64> = batch.iter().map(|m| to_millis(m.created_at)).collect();
    let keys: Vec<Option<&str>> =
        batch.iter().map(|m| m.client_msg_id.as_ref().map(ClientMsgId::as_str)).collect();
    let call =
        AppendBatch { rooms: &rooms, senders: &senders, contents: &contents, created: &created, keys: &keys };
    let rows: Vec<Outcome> = call.load(c)?;
    if rows.len() != batch.len() {
        return Err(internal(format!(
            "webchat_append_batch answered {} of {} messages",
            rows.len(),
            batch.len()
        )));
    }
    let mut results: Vec<Appended> = Vec::with_capacity(batch.len());
    for (i, (m, row)) in batch.iter().zip(rows).enumerate() {
        if usize::try_from(row.idx).ok() != Some(i + 1) {
            return Err(internal(format!("webchat_append_batch answered out of order at {i}")));
        }
        let result = match (row.outcome, row.dup_of) {
            (2, _) => Appended::NotAMember,
            // A resend of an earlier message of this batch (1-based): that message's answer.
            (1, Some(first)) => match usize::try_from(first - 1).ok().and_then(|f| results.get(f)) {
                Some(Appended::Stored(original) | Appended::Duplicate(original)) => {
                    Appended::Duplicate(original.clone())
                }
                _ => return Err(internal(format!("message {i} resends {first}, which was not stored"))),
            },
            (1, None) => Appended::Duplicate(message_of(m.room_id, row)?),
            (0, _) => Appended::Stored(message_of(m.room_id, row)?),
            (other, _) => return Err(internal(format!("webchat_append_batch outcome {other}"))),
        };
        results.push(result);
    }
    Ok(results)
}
