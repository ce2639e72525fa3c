use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use webchat_domain::StoreError;
use webchat_domain::model::{Claims, SessionId, TokenKind, UserId};
use webchat_domain::ports::{StoreResult, TokenCodec, TokenDecodeError};

/// HS256 tokens. Only the signature and the shape are checked here; expiry and session
/// liveness are domain rules.
pub struct JwtCodec {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtCodec(HS256)")
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct WireClaims {
    sub: Uuid,
    sid: Uuid,
    jti: Uuid,
    iat: i64,
    exp: i64,
    token_type: WireKind,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum WireKind {
    Access,
    Refresh,
}

impl JwtCodec {
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // The domain checks expiry against its clock.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["sub", "exp", "iat"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }
}

impl TokenCodec for JwtCodec {
    fn encode(&self, claims: &Claims) -> StoreResult<String> {
        let wire = WireClaims {
            sub: claims.sub.0,
            sid: claims.sid.0,
            jti: claims.jti,
            iat: claims.iat.timestamp(),
            exp: claims.exp.timestamp(),
            token_type: match claims.kind {
                TokenKind::Access => WireKind::Access,
                TokenKind::Refresh => WireKind::Refresh,
            },
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &wire, &self.encoding)
            .map_err(|e| StoreError::Internal(format!("jwt: {e}")))
    }

    fn decode(&self, token: &str) -> Result<Claims, TokenDecodeError> {
        let data = jsonwebtoken::decode::<WireClaims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenDecodeError::Invalid)?;
        let w = data.claims;
        let time = |s: i64| DateTime::<Utc>::from_timestamp(s, 0).ok_or(TokenDecodeError::Invalid);
        Ok(Claims {
            sub: UserId(w.sub),
            sid: SessionId(w.sid),
            jti: w.jti,
            iat: time(w.iat)?,
            exp: time(w.exp)?,
            kind: match w.token_type {
                WireKind::Access => TokenKind::Access,
                WireKind::Refresh => TokenKind::Refresh,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(kind: TokenKind) -> Claims {
        let now = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).expect("valid time");
        Claims {
            sub: UserId(Uuid::new_v4()),
            sid: SessionId(Uuid::new_v4()),
            jti: Uuid::new_v4(),
            iat: now,
            exp: now + chrono::Duration::minutes(15),
            kind,
        }
    }

    #[test]
    fn a_token_decodes_to_the_claims_it_was_made_from() {
        let codec = JwtCodec::new(b"secret");
        for kind in [TokenKind::Access, TokenKind::Refresh] {
            let c = claims(kind);
            let token = codec.encode(&c).expect("encodes");
            assert_eq!(codec.decode(&token), Ok(c));
        }
    }

    #[test]
    fn a_token_signed_with_another_secret_is_invalid() {
        let token = JwtCodec::new(b"one").encode(&claims(TokenKind::Access)).expect("encodes");
        assert_eq!(JwtCodec::new(b"two").decode(&token), Err(TokenDecodeError::Invalid));
    }

    #[test]
    fn garbage_and_tampered_tokens_are_invalid() {
        let codec = JwtCodec::new(b"secret");
        assert_eq!(codec.decode("not.a.token"), Err(TokenDecodeError::Invalid));
        let token = codec.encode(&claims(TokenKind::Access)).expect("encodes");
        let tampered = format!("{}x", token);
        assert_eq!(codec.decode(&tampered), Err(TokenDecodeError::Invalid));
    }
}
