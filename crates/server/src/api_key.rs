//! API keys: how one is made, and what the store keeps of it (its hash and prefix).

use contactd_api::Scope;

use crate::secret;
use crate::store::NewApiKey;

/// Every key starts with this, so a leaked one is recognisable (and greppable by scanners).
const KEY_PREFIX: &str = "cd_";

/// How many characters of a key are kept in clear to tell keys apart in listings: the
/// marker and 8 hex digits (32 bits), far too few to help guess the 256-bit rest.
const DISPLAY_PREFIX_LEN: usize = KEY_PREFIX.len() + 8;

/// A freshly made key: the secret to show once, and what the store keeps of it.
#[derive(Debug)]
pub struct GeneratedKey {
    pub secret: String,
    pub record: NewApiKey,
}

/// Makes a new key from 256 random bits, able to do what `scopes` allow
/// (docs/reference.md#scopes), at the server's rate limit.
pub fn generate(name: Option<String>, scopes: &[Scope]) -> GeneratedKey {
    let secret = format!("{KEY_PREFIX}{}", secret::random_hex());
    let record = NewApiKey {
        name,
        prefix: secret[..DISPLAY_PREFIX_LEN].to_owned(),
        key_hash: secret::hash(&secret),
        scopes: scopes.to_vec(),
        rate_limit: None,
    };
    GeneratedKey { secret, record }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_and_only_their_hash_and_prefix_are_kept() {
        let first = generate(Some("ci".to_owned()), &Scope::ALL);
        let second = generate(None, &[Scope::ContactsRead]);
        assert_ne!(first.secret, second.secret);
        assert_eq!(first.record.key_hash, secret::hash(&first.secret));
        assert!(first.secret.starts_with(&first.record.prefix));
        assert_eq!(first.record.prefix.len(), DISPLAY_PREFIX_LEN);
        assert_eq!(first.secret.len(), KEY_PREFIX.len() + 64);
    }
}
