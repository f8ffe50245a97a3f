//! Dashboard passwords: what one must be, and the argon2id hash that is all the store keeps.

use std::sync::LazyLock;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::domain::Invalid;

/// Shortest password accepted, in characters (NIST SP 800-63B's minimum).
const MIN_CHARS: usize = 8;
/// Longest password accepted, in characters: long enough for any passphrase, short enough
/// that a login cannot make the server hash megabytes.
const MAX_CHARS: usize = 256;
/// Length of a generated password: 20 alphanumerics, about 119 bits.
const GENERATED_CHARS: usize = 20;

/// A password that meets the rules, ready to hash.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Password(…)")
    }
}

impl Password {
    /// Accepts a password of 8 to 256 characters; surrounding spaces count, as typed.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let chars = text.chars().count();
        if !(MIN_CHARS..=MAX_CHARS).contains(&chars) {
            return Err(Invalid::new(
                "invalid_password",
                format!("a password must be {MIN_CHARS} to {MAX_CHARS} characters long"),
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// A random password, for the user the first run creates.
    pub fn generate() -> Self {
        let text = rand::rng()
            .sample_iter(Alphanumeric)
            .take(GENERATED_CHARS)
            .map(char::from)
            .collect();
        Self(text)
    }

    /// The password itself, to show the one person who must learn it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its argon2id hash (a PHC string, salt and parameters included), with the crate's
    /// defaults (OWASP's 19 MiB, 2 passes). Tens of milliseconds of CPU: call it off the
    /// async threads.
    pub fn hash(&self) -> String {
        Argon2::default()
            .hash_password(self.0.as_bytes())
            .map(|hash| hash.to_string())
            .expect("argon2 hashes any password of at most 256 characters, given OS randomness")
    }
}

/// Whether `password` is the one `hash` was made from. A malformed hash matches nothing.
/// As slow as [`Password::hash`], on purpose.
pub fn verify(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// Spends the time a [`verify`] takes, for a login whose email matches no user, so that
/// response times do not tell which emails have an account.
pub fn verify_nothing(password: &str) {
    static HASH: LazyLock<String> = LazyLock::new(|| Password::generate().hash());
    verify(password, &HASH);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let password = Password::parse("correct horse").expect("valid");
        let hash = password.hash();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify("correct horse", &hash));
        assert!(!verify("correct horse ", &hash));
        assert!(!verify("correct horse", "not a hash"));
        assert_ne!(hash, password.hash(), "every hash has its own salt");
    }

    #[test]
    fn passwords_are_8_to_256_characters() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"é".repeat(256)).is_ok());
        assert!(Password::parse(&"é".repeat(257)).is_err());
    }

    #[test]
    fn generated_passwords_are_valid_and_distinct() {
        let first = Password::generate();
        assert!(Password::parse(first.expose()).is_ok());
        assert_ne!(first.expose(), Password::generate().expose());
        assert_eq!(format!("{first:?}"), "Password(…)");
    }
}
