use super::{InvalidValue, Page, UserId, is_name_char};
use chrono::{DateTime, Utc};
use std::fmt;

/// An email address, kept as typed; compared ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    /// # Errors
    /// When the address is not a plausible `local@domain.tld` of at most 254 characters.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let invalid = || InvalidValue::new("Enter a valid email address.");
        let s = raw.trim();
        if s.is_empty() || s.chars().count() > Self::MAX_LEN {
            return Err(invalid());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(invalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local.chars().all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            })
            && labels
                .last()
                .is_some_and(|tld| tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic));
        if local_ok && domain_ok { Ok(Self(s.to_owned())) } else { Err(invalid()) }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form uniqueness and login compare.
    #[must_use]
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }

    /// Wraps a value read back from the store, which only ever holds parsed emails.
    #[must_use]
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 3–32 letters, digits, `_`, `.`, `-`; unique ignoring case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    /// # Errors
    /// When the name is too short, too long or has a character outside the alphabet.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let n = raw.chars().count();
        if !(3..=32).contains(&n) {
            return Err(InvalidValue::new("Ensure this field has 3 to 32 characters."));
        }
        if !raw.chars().all(is_name_char) {
            return Err(InvalidValue::new("Enter a valid username: letters, digits, and _ . - only."));
        }
        Ok(Self(raw.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    #[must_use]
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }

    #[must_use]
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A plain-text password of 8–72 bytes. Longer ones are refused rather than truncated,
/// because bcrypt only reads 72 bytes and two passwords must never share a hash.
/// Its `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_BYTES: usize = 8;
    pub const MAX_BYTES: usize = 72;

    /// # Errors
    /// When the password is shorter than 8 or longer than 72 bytes.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        match raw.len() {
            n if n < Self::MIN_BYTES => {
                Err(InvalidValue::new("This password is too short. It must contain at least 8 characters."))
            }
            n if n > Self::MAX_BYTES => {
                Err(InvalidValue::new("This password is too long. It must be at most 72 bytes."))
            }
            _ => Ok(Self(raw.to_owned())),
        }
    }

    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A password hash as produced by the [`PasswordHasher`](crate::ports::PasswordHasher).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(pub String);

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(***)")
    }
}

/// A registered account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub email: Email,
    pub created_at: DateTime<Utc>,
}

/// What a new account is stored with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub id: UserId,
    pub username: Username,
    pub email: Email,
    pub password_hash: PasswordHash,
    pub created_at: DateTime<Utc>,
}

/// A change to an account's public fields; `None` keeps the field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserPatch {
    pub email: Option<Email>,
    pub username: Option<Username>,
}

/// `GET /api/users/list`: an optional username prefix and a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserListQuery {
    /// Matched against the start of the username, ignoring case.
    pub search: Option<String>,
    pub page: Page,
}
