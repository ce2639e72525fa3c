use webchat_domain::StoreError;
use webchat_domain::model::PasswordHash;
use webchat_domain::ports::{PasswordHasher, StoreResult};

/// bcrypt with a configurable cost (12 in production, 4 in tests).
#[derive(Debug, Clone, Copy)]
pub struct BcryptHasher {
    cost: u32,
}

impl BcryptHasher {
    /// # Errors
    /// When `cost` is outside bcrypt's 4..=31.
    pub fn new(cost: u32) -> Result<Self, String> {
        if (4..=31).contains(&cost) {
            Ok(Self { cost })
        } else {
            Err(format!("bcrypt cost must be between 4 and 31, got {cost}"))
        }
    }
}

impl PasswordHasher for BcryptHasher {
    fn hash(&self, password: &str) -> StoreResult<PasswordHash> {
        bcrypt::hash(password, self.cost)
            .map(PasswordHash)
            .map_err(|e| StoreError::Internal(format!("bcrypt: {e}")))
    }

    fn verify(&self, password: &str, hash: &PasswordHash) -> StoreResult<bool> {
        // A malformed stored hash verifies nothing rather than failing the request.
        Ok(bcrypt::verify(password, &hash.0).unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_no_other() {
        let h = BcryptHasher::new(4).expect("cost 4 is valid");
        let hash = h.hash("correct horse").expect("hashing works");
        assert!(h.verify("correct horse", &hash).expect("verify"));
        assert!(!h.verify("wrong horse!", &hash).expect("verify"));
    }

    #[test]
    fn a_malformed_hash_verifies_nothing() {
        let h = BcryptHasher::new(4).expect("cost 4 is valid");
        assert!(!h.verify("anything", &PasswordHash("not a hash".into())).expect("verify"));
    }

    #[test]
    fn a_cost_outside_bcrypts_range_is_refused() {
        assert!(BcryptHasher::new(3).is_err());
        assert!(BcryptHasher::new(32).is_err());
    }
}
