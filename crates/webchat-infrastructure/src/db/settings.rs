//! The `settings` table: values the service keeps for itself, such as a generated JWT secret.

use super::Db;
use super::schema::settings;
use diesel::prelude::*;
use webchat_domain::ports::StoreResult;

impl Db {
    /// The stored value of `key`, storing `make()` first when there is none. Concurrent
    /// first calls from several nodes all end up with the same value.
    /// # Errors
    /// Store failures.
    pub fn setting_or_insert(&self, key: &str, make: impl FnOnce() -> String) -> StoreResult<String> {
        let current =
            || self.read(|c| settings::table.find(key).select(settings::value).first::<String>(c).optional());
        if let Some(v) = current()? {
            return Ok(v);
        }
        let value = make();
        // Another node may win the race; its value is the one to use.
        let _ = self.write(|c| {
            diesel::insert_into(settings::table)
                .values((settings::key.eq(key), settings::value.eq(&value)))
                .execute(c)?;
            Ok(())
        });
        current()?.ok_or_else(|| webchat_domain::StoreError::Internal(format!("setting {key} vanished")))
    }
}
