//! Webhook signatures as the Standard Webhooks specification defines them
//! (<https://www.standardwebhooks.com>), which contactd signs its deliveries with: a
//! receiver written in Rust checks a delivery with [`verify`] before trusting it.
//!
//! The signature is `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`, keyed
//! with the base64-decoded part of the secret after `whsec_`. A delivery made while a
//! rotated secret is still honoured carries one signature per secret, space-separated.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of every webhook secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// The headers of a delivery.
pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// How far a delivery's timestamp may be from the receiver's clock, as the specification
/// recommends: an older delivery may be a replay.
pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Why a delivery is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The secret is not `whsec_` and base64.
    #[error("the secret is not whsec_ followed by base64")]
    InvalidSecret,
    /// The timestamp is not a number of seconds.
    #[error("the webhook-timestamp header is not a Unix time in seconds")]
    InvalidTimestamp,
    /// The timestamp is further than [`TOLERANCE`] from now.
    #[error("the webhook-timestamp is too far from now: a late or replayed delivery")]
    StaleTimestamp,
    /// No signature of the header matches.
    #[error("no signature matches the delivery")]
    NoMatchingSignature,
}

/// The `webhook-signature` value of one secret for a delivery: `v1,<base64>`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, VerifyError> {
    let mac = keyed(secret, id, timestamp, body)?;
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Checks a delivery: the `webhook-id`, `webhook-timestamp` and `webhook-signature`
/// headers' values and the body exactly as received, against the endpoint's secret, at the
/// time `now`.
pub fn verify_at(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: SystemTime,
) -> Result<(), VerifyError> {
    let timestamp: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::InvalidTimestamp)?;
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
    });
    let tolerance = i64::try_from(TOLERANCE.as_secs()).unwrap_or(i64::MAX);
    if timestamp.abs_diff(now) > tolerance.unsigned_abs() {
        return Err(VerifyError::StaleTimestamp);
    }
    let matches = signatures
        .split(' ')
        .filter_map(|signature| signature.strip_prefix("v1,"))
        .filter_map(|signature| STANDARD.decode(signature).ok())
        .any(|signature| {
            keyed(secret, id, timestamp, body).is_ok_and(|mac| mac.verify_slice(&signature).is_ok())
        });
    if matches {
        Ok(())
    } else {
        // A malformed secret matches nothing: say so rather than blame the delivery.
        keyed(secret, id, timestamp, body)?;
        Err(VerifyError::NoMatchingSignature)
    }
}

/// [`verify_at`] now.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
) -> Result<(), VerifyError> {
    verify_at(secret, id, timestamp, signatures, body, SystemTime::now())
}

/// The HMAC of a delivery under a secret, before it is finalised.
fn keyed(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<Hmac<Sha256>, VerifyError> {
    let key = secret
        .strip_prefix(SECRET_PREFIX)
        .and_then(|key| STANDARD.decode(key).ok())
        .ok_or(VerifyError::InvalidSecret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| VerifyError::InvalidSecret)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn at(timestamp: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(timestamp.unsigned_abs())
    }

    #[test]
    fn signs_as_the_specification_does() {
        assert_eq!(sign(SECRET, ID, TIMESTAMP, BODY), Ok(SIGNATURE.to_owned()));
    }

    #[test]
    fn verifies_any_one_signature_of_the_header() {
        let header = format!("v1,bm90IGl0 {SIGNATURE}");
        let stamp = TIMESTAMP.to_string();
        assert_eq!(
            verify_at(SECRET, ID, &stamp, &header, BODY, at(TIMESTAMP)),
            Ok(())
        );
    }

    #[test]
    fn refuses_a_changed_body_a_stale_time_and_a_bad_secret() {
        let stamp = TIMESTAMP.to_string();
        assert_eq!(
            verify_at(SECRET, ID, &stamp, SIGNATURE, b"{}", at(TIMESTAMP)),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            verify_at(SECRET, ID, &stamp, SIGNATURE, BODY, at(TIMESTAMP + 301)),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            verify_at("secret", ID, &stamp, SIGNATURE, BODY, at(TIMESTAMP)),
            Err(VerifyError::InvalidSecret)
        );
        assert_eq!(
            verify_at(SECRET, ID, "soon", SIGNATURE, BODY, at(TIMESTAMP)),
            Err(VerifyError::InvalidTimestamp)
        );
    }
}
