//! The `users` table: [`UserRepository`].

use super::rooms::members_changed_for;
use super::schema::{memberships, messages, sessions, users};
use super::{Db, from_millis, to_millis};
use diesel::prelude::*;
use uuid::Uuid;
use webchat_domain::StoreError;
use webchat_domain::model::{
    Email, NewUser, PasswordHash, SessionId, User, UserId, UserListQuery, UserPatch, Username,
};
use webchat_domain::ports::{StoreResult, UserRepository};

#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
pub(super) struct UserRow {
    id: String,
    username: String,
    email: String,
    created_at: i64,
}

impl UserRow {
    pub(super) fn into_user(self) -> StoreResult<User> {
        Ok(User {
            id: parse_uuid(&self.id).map(UserId)?,
            username: Username::from_trusted(self.username),
            email: Email::from_trusted(self.email),
            created_at: from_millis(self.created_at),
        })
    }
}

pub(super) fn parse_uuid(s: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(s).map_err(|e| StoreError::Internal(format!("stored id {s:?}: {e}")))
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewUserRow<'a> {
    id: String,
    username: &'a str,
    username_lower: String,
    email: &'a str,
    email_lower: String,
    password_hash: &'a str,
    created_at: i64,
}

/// Escapes `LIKE` wildcards so a search for `a_b` matches only that prefix.
fn like_prefix(prefix: &str) -> String {
    let mut p = String::with_capacity(prefix.len() + 1);
    for c in prefix.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

impl UserRepository for Db {
    fn insert(&self, user: &NewUser) -> StoreResult<User> {
        let row = NewUserRow {
            id: user.id.to_string(),
            username: user.username.as_str(),
            username_lower: user.username.normalized(),
            email: user.email.as_str(),
            email_lower: user.email.normalized(),
            password_hash: &user.password_hash.0,
            created_at: to_millis(user.created_at),
        };
        self.write(|c| {
            diesel::insert_into(users::table).values(&row).execute(c)?;
            Ok(())
        })?;
        Ok(User {
            id: user.id,
            username: user.username.clone(),
            email: user.email.clone(),
            created_at: from_millis(row.created_at),
        })
    }

    fn find(&self, id: UserId) -> StoreResult<Option<User>> {
        self.read(|c| users::table.find(id.to_string()).select(UserRow::as_select()).first(c).optional())?
            .map(UserRow::into_user)
            .transpose()
    }

    fn find_credentials(&self, email: &str) -> StoreResult<Option<(User, PasswordHash)>> {
        let found = self.read(|c| {
            users::table
                .filter(users::email_lower.eq(email.to_lowercase()))
                .select((UserRow::as_select(), users::password_hash))
                .first::<(UserRow, String)>(c)
                .optional()
        })?;
        found.map(|(row, hash)| Ok((row.into_user()?, PasswordHash(hash)))).transpose()
    }

    fn password_hash(&self, id: UserId) -> StoreResult<Option<PasswordHash>> {
        Ok(self
            .read(|c| {
                users::table.find(id.to_string()).select(users::password_hash).first::<String>(c).optional()
            })?
            .map(PasswordHash))
    }

    fn list(&self, query: &UserListQuery) -> StoreResult<Vec<User>> {
        let rows = self.read(|c| {
            let mut q = users::table.select(UserRow::as_select()).into_boxed();
            if let Some(prefix) = query.search.as_deref().filter(|s| !s.is_empty()) {
                q = q.filter(users::username_lower.like(like_prefix(prefix)).escape('\\'));
            }
            q.order(users::username_lower.asc())
                .limit(i64::from(query.page.limit))
                .offset(i64::try_from(query.page.offset).unwrap_or(i64::MAX))
                .load(c)
        })?;
        rows.into_iter().map(UserRow::into_user).collect()
    }

    fn update(&self, id: UserId, patch: &UserPatch) -> StoreResult<Option<User>> {
        let key = id.to_string();
        let row = self.write(|c| {
            if let Some(email) = &patch.email {
                diesel::update(users::table.find(&key))
                    .set((users::email.eq(email.as_str()), users::email_lower.eq(email.normalized())))
                    .execute(c)?;
            }
            if let Some(name) = &patch.username {
                diesel::update(users::table.find(&key))
                    .set((users::username.eq(name.as_str()), users::username_lower.eq(name.normalized())))
                    .execute(c)?;
                members_changed_for(c, &key)?;
            }
            Ok(users::table.find(&key).select(UserRow::as_select()).first(c).optional()?)
        })?;
        if patch.username.is_some() {
            // Remembered messages carry the old name.
            self.core.recent.clear();
        }
        row.map(UserRow::into_user).transpose()
    }

    fn set_password_hash(&self, id: UserId, hash: &PasswordHash) -> StoreResult<()> {
        self.write(|c| {
            diesel::update(users::table.find(id.to_string()))
                .set(users::password_hash.eq(&hash.0))
                .execute(c)?;
            Ok(())
        })
    }

    fn delete(&self, id: UserId) -> StoreResult<Option<Vec<SessionId>>> {
        let key = id.to_string();
        let ended = self.write(|c| {
            let exists = users::table.find(&key).select(users::id).first::<String>(c).optional()?;
            if exists.is_none() {
                return Ok(None);
            }
            let live: Vec<String> = sessions::table
                .filter(sessions::user_id.eq(&key))
                .filter(sessions::revoked_at.is_null())
                .select(sessions::id)
                .load(c)?;
            // Explicit rather than left to ON DELETE rules, which SQLite applies only with
            // foreign keys switched on.
            diesel::delete(sessions::table.filter(sessions::user_id.eq(&key))).execute(c)?;
            members_changed_for(c, &key)?;
            diesel::delete(memberships::table.filter(memberships::user_id.eq(&key))).execute(c)?;
            diesel::update(messages::table.filter(messages::sender_id.eq(&key)))
                .set(messages::sender_id.eq(None::<String>))
                .execute(c)?;
            diesel::delete(users::table.find(&key)).execute(c)?;
            Ok(Some(live))
        })?;
        // Remembered messages still name the deleted sender.
        self.core.recent.clear();
        ended.map(|ids| ids.iter().map(|s| parse_uuid(s).map(SessionId)).collect()).transpose()
    }
}
