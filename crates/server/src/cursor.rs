//! Page cursors: opaque, signed with the company's secret, so a tampered cursor or one
//! from another company (or of another list) is refused instead of silently paging through
//! the wrong place.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::store::{EventPosition, ListPosition};

/// Rows to read for a page of `limit`: one more, which tells whether a next page exists
/// without a count query ([`next_page`]).
pub fn rows_for_page(limit: u32) -> u32 {
    limit.saturating_add(1)
}

/// Trims rows read with [`rows_for_page`] to a page of `limit`, and returns where the next
/// page starts, the position of the page's last row, when there is a next page.
pub fn next_page<T, P>(rows: &mut Vec<T>, limit: u32, position: impl FnOnce(&T) -> P) -> Option<P> {
    let limit = limit as usize;
    if rows.len() <= limit {
        return None;
    }
    rows.truncate(limit);
    rows.last().map(position)
}

/// A 128-bit tag: forging one is out of reach, and cursors stay short.
const TAG_LEN: usize = 16;

/// Where a list's next page starts, as its cursor holds it. Each kind has its own length,
/// so a cursor of one list is refused by another.
pub trait Position: Copy {
    const LEN: usize;
    fn to_bytes(self) -> Vec<u8>;
    /// Reads exactly [`Self::LEN`] bytes.
    fn from_bytes(bytes: &[u8]) -> Option<Self>;
}

/// A contact list's: after this contact.
impl Position for ListPosition {
    const LEN: usize = 8 + 16;

    fn to_bytes(self) -> Vec<u8> {
        [&self.at_ms.to_be_bytes()[..], self.id.as_bytes()].concat()
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (at, id) = bytes.split_at_checked(8)?;
        Some(Self {
            at_ms: i64::from_be_bytes(at.try_into().ok()?),
            id: Uuid::from_slice(id).ok()?,
        })
    }
}

/// The feed's: after this event.
impl Position for EventPosition {
    const LEN: usize = 8 + 8;

    fn to_bytes(self) -> Vec<u8> {
        [self.tx.to_be_bytes(), self.position.to_be_bytes()].concat()
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (tx, position) = bytes.split_at_checked(8)?;
        Some(Self {
            tx: i64::from_be_bytes(tx.try_into().ok()?),
            position: i64::from_be_bytes(position.try_into().ok()?),
        })
    }
}

/// A contact history's: before the event at this position.
impl Position for i64 {
    const LEN: usize = 8;

    fn to_bytes(self) -> Vec<u8> {
        self.to_be_bytes().to_vec()
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Some(i64::from_be_bytes(bytes.try_into().ok()?))
    }
}

/// Encodes where the next page starts, signed with `secret` and bound to `query`: the
/// digest of the filters and order the page was read with
/// ([`crate::store::ContactQuery::fingerprint`]; empty for a list that has none), which is
/// signed but not carried, so the cursor is taken back only with the same query.
pub fn encode<P: Position>(position: P, secret: &[u8], query: &[u8]) -> String {
    let mut bytes = position.to_bytes();
    let tag = mac(secret, &bytes, query).finalize().into_bytes();
    bytes.extend_from_slice(&tag[..TAG_LEN]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes a cursor made by [`encode`] with the same secret, kind and query; `None` for
/// anything else.
pub fn decode<P: Position>(cursor: &str, secret: &[u8], query: &[u8]) -> Option<P> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    if bytes.len() != P::LEN + TAG_LEN {
        return None;
    }
    let (position, tag) = bytes.split_at(P::LEN);
    mac(secret, position, query)
        .verify_truncated_left(tag)
        .ok()?;
    P::from_bytes(position)
}

fn mac(secret: &[u8], position: &[u8], query: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(position);
    mac.update(query);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const POSITION: ListPosition = ListPosition {
        at_ms: 1_764_190_800_123,
        id: Uuid::from_u128(0x0192_f3a4_7b1c_7d2e_9f00_1234_5678_90ab),
    };

    #[test]
    fn a_cursor_round_trips_with_its_own_secret() {
        let cursor = encode(POSITION, b"company a", b"");
        assert_eq!(decode(&cursor, b"company a", b""), Some(POSITION));
        let event = EventPosition {
            tx: 7,
            position: 42,
        };
        assert_eq!(
            decode(&encode(event, b"company a", b""), b"company a", b""),
            Some(event)
        );
    }

    #[test]
    fn a_cursor_of_another_list_is_refused() {
        let cursor = encode(POSITION, b"company a", b"");
        assert_eq!(decode::<EventPosition>(&cursor, b"company a", b""), None);
        assert_eq!(decode::<i64>(&cursor, b"company a", b""), None);
    }

    #[test]
    fn another_company_or_a_tampered_cursor_is_refused() {
        let cursor = encode(POSITION, b"company a", b"");
        assert_eq!(decode::<ListPosition>(&cursor, b"company b", b""), None);
        let mut tampered = cursor.into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("still ASCII");
        assert_eq!(decode::<ListPosition>(&tampered, b"company a", b""), None);
        assert_eq!(decode::<ListPosition>("garbage!", b"company a", b""), None);
        assert_eq!(decode::<ListPosition>("", b"company a", b""), None);
    }

    #[test]
    fn a_cursor_is_taken_back_only_with_its_own_query() {
        let cursor = encode(POSITION, b"company a", b"sort=updated_at");
        assert_eq!(
            decode(&cursor, b"company a", b"sort=updated_at"),
            Some(POSITION)
        );
        assert_eq!(decode::<ListPosition>(&cursor, b"company a", b""), None);
        assert_eq!(
            decode::<ListPosition>(&cursor, b"company a", b"sort=created_at"),
            None
        );
    }
}
