//! The `sessions` table: [`SessionRepository`].

use super::schema::sessions;
use super::users::parse_uuid;
use super::{Db, from_millis, to_millis};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;
use webchat_domain::model::{Session, SessionId, UserId};
use webchat_domain::ports::{RotateOutcome, SessionRepository, StoreResult};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
struct SessionRow {
    id: String,
    user_id: String,
    refresh_jti: String,
    created_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
}

impl SessionRow {
    fn into_session(self) -> StoreResult<Session> {
        Ok(Session {
            id: SessionId(parse_uuid(&self.id)?),
            user_id: UserId(parse_uuid(&self.user_id)?),
            refresh_jti: parse_uuid(&self.refresh_jti)?,
            created_at: from_millis(self.created_at),
            expires_at: from_millis(self.expires_at),
            revoked: self.revoked_at.is_some(),
        })
    }
}

fn now_millis() -> i64 {
    to_millis(Utc::now())
}

impl SessionRepository for Db {
    fn ended_among(&self, ids: &[SessionId]) -> StoreResult<Vec<SessionId>> {
        let mut ended = Vec::new();
        // Bounded IN lists: SQLite caps the number of bound parameters.
        for chunk in ids.chunks(500) {
            let wanted: Vec<String> = chunk.iter().map(ToString::to_string).collect();
            let live: std::collections::HashSet<String> = self
                .read(|c| {
                    sessions::table
                        .filter(sessions::id.eq_any(&wanted))
                        .filter(sessions::revoked_at.is_null())
                        .select(sessions::id)
                        .load::<String>(c)
                })?
                .into_iter()
                .collect();
            ended.extend(chunk.iter().filter(|id| !live.contains(&id.to_string())).copied());
        }
        Ok(ended)
    }

    fn insert(&self, s: &Session) -> StoreResult<()> {
        let row = SessionRow {
            id: s.id.to_string(),
            user_id: s.user_id.to_string(),
            refresh_jti: s.refresh_jti.to_string(),
            created_at: to_millis(s.created_at),
            expires_at: to_millis(s.expires_at),
            revoked_at: s.revoked.then(now_millis),
        };
        self.write(|c| {
            diesel::insert_into(sessions::table).values(&row).execute(c)?;
            Ok(())
        })
    }

    fn find(&self, id: SessionId) -> StoreResult<Option<Session>> {
        self.read(|c| {
            sessions::table.find(id.to_string()).select(SessionRow::as_select()).first(c).optional()
        })?
        .map(SessionRow::into_session)
        .transpose()
    }

    fn rotate(
        &self,
        id: SessionId,
        old_jti: Uuid,
        new_jti: Uuid,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<RotateOutcome> {
        let key = id.to_string();
        self.write(|c| {
            // One conditional UPDATE: of two concurrent rotations of one token, one wins.
            let swapped = diesel::update(
                sessions::table
                    .find(&key)
                    .filter(sessions::refresh_jti.eq(old_jti.to_string()))
                    .filter(sessions::revoked_at.is_null()),
            )
            .set((
                sessions::refresh_jti.eq(new_jti.to_string()),
                sessions::expires_at.eq(to_millis(expires_at)),
            ))
            .execute(c)?;
            if swapped == 1 {
                return Ok(RotateOutcome::Rotated);
            }
            let live = sessions::table
                .find(&key)
                .filter(sessions::revoked_at.is_null())
                .select(sessions::id)
                .first::<String>(c)
                .optional()?;
            Ok(if live.is_some() { RotateOutcome::Stale } else { RotateOutcome::Gone })
        })
    }

    fn revoke(&self, id: SessionId) -> StoreResult<bool> {
        self.write(|c| {
            let n =
                diesel::update(sessions::table.find(id.to_string()).filter(sessions::revoked_at.is_null()))
                    .set(sessions::revoked_at.eq(now_millis()))
                    .execute(c)?;
            Ok(n == 1)
        })
    }

    fn revoke_all_of_user(&self, user: UserId, keep: Option<SessionId>) -> StoreResult<Vec<SessionId>> {
        let keep = keep.map(|k| k.to_string()).unwrap_or_default();
        let ids: Vec<String> = self.write(|c| {
            let live = sessions::table
                .filter(sessions::user_id.eq(user.to_string()))
                .filter(sessions::revoked_at.is_null())
                .filter(sessions::id.ne(&keep));
            let ids = live.clone().select(sessions::id).load::<String>(c)?;
            diesel::update(live).set(sessions::revoked_at.eq(now_millis())).execute(c)?;
            Ok(ids)
        })?;
        ids.iter().map(|s| parse_uuid(s).map(SessionId)).collect()
    }
}
