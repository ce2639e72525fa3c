//! Credentials: bcrypt password hashing and HS256 JWTs.

mod bcrypt;
mod jwt;

pub use self::bcrypt::BcryptHasher;
pub use self::jwt::JwtCodec;
