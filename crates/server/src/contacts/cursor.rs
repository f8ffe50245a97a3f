//! List cursors: opaque, signed with the company's secret, so a tampered cursor or one
//! from another company is refused instead of silently paging through the wrong place.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::store::ListPosition;

/// A 128-bit tag: forging one is out of reach, and cursors stay short.
const TAG_LEN: usize = 16;
const POSITION_LEN: usize = 8 + 16;

/// Encodes where the next page starts, signed with `secret`.
pub fn encode(position: ListPosition, secret: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(POSITION_LEN + TAG_LEN);
    bytes.extend_from_slice(&position.created_at_ms.to_be_bytes());
    bytes.extend_from_slice(position.id.as_bytes());
    let tag = mac(secret, &bytes).finalize().into_bytes();
    bytes.extend_from_slice(&tag[..TAG_LEN]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes a cursor made by [`encode`] with the same secret; `None` for anything else.
pub fn decode(cursor: &str, secret: &[u8]) -> Option<ListPosition> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    if bytes.len() != POSITION_LEN + TAG_LEN {
        return None;
    }
    let (position, tag) = bytes.split_at(POSITION_LEN);
    mac(secret, position).verify_truncated_left(tag).ok()?;
    let (created_at, id) = position.split_at(8);
    Some(ListPosition {
        created_at_ms: i64::from_be_bytes(created_at.try_into().ok()?),
        id: Uuid::from_slice(id).ok()?,
    })
}

fn mac(secret: &[u8], data: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const POSITION: ListPosition = ListPosition {
        created_at_ms: 1_764_190_800_123,
        id: Uuid::from_u128(0x0192_f3a4_7b1c_7d2e_9f00_1234_5678_90ab),
    };

    #[test]
    fn a_cursor_round_trips_with_its_own_secret() {
        let cursor = encode(POSITION, b"company a");
        assert_eq!(decode(&cursor, b"company a"), Some(POSITION));
    }

    #[test]
    fn another_company_or_a_tampered_cursor_is_refused() {
        let cursor = encode(POSITION, b"company a");
        assert_eq!(decode(&cursor, b"company b"), None);
        let mut tampered = cursor.into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("still ASCII");
        assert_eq!(decode(&tampered, b"company a"), None);
        assert_eq!(decode("garbage!", b"company a"), None);
        assert_eq!(decode("", b"company a"), None);
    }
}
