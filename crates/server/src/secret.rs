//! High-entropy secrets (API keys, dashboard session and CSRF tokens): how they are made,
//! and the hash that is all the store keeps of the ones that grant access.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// 256 random bits, hex-encoded.
pub fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// SHA-256 of the whole secret: enough for high-entropy secrets (no salt or slow hash is
/// needed when guessing is hopeless), and cheap on every request.
pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_distinct_and_hash_alike_only_when_equal() {
        let first = random_hex();
        let second = random_hex();
        assert_eq!(first.len(), 64);
        assert_ne!(first, second);
        assert_eq!(hash(&first), hash(&first.clone()));
        assert_ne!(hash(&first), hash(&second));
    }
}
