//! Cursors that are garbage, tampered with, or another company's.

use axum::body::Body;
use axum::http::{Method, Request, header};
use serde_json::json;

use super::{Attempt, Seeded, assert_all_refused, request, seeded};
use crate::helpers::{contract_test, encode_segment};

async fn a_garbage_or_foreign_cursor_is_refused() {
    let Seeded { app, .. } = seeded().await;
    let ours = app.list_contacts("?limit=1").await.body["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let other_key = app.other_company_key().await;
    for index in 0..3 {
        app.request_as(
            &other_key,
            Method::POST,
            "/api/v1/contacts",
            Some(json!({"ext_id": format!("theirs-{index}")})),
        )
        .await
        .assert_status(200);
    }
    let theirs = app
        .request_as(&other_key, Method::GET, "/api/v1/contacts?limit=1", None)
        .await
        .body["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let base64 = |bytes: &[u8]| -> String {
        // URL-safe, unpadded: the alphabet real cursors use, so only the length is wrong.
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bits: Vec<bool> = bytes
            .iter()
            .flat_map(|byte| (0..8).rev().map(move |bit| (*byte >> bit) & 1 == 1))
            .collect();
        bits.chunks(6)
            .map(|chunk| {
                let value = chunk
                    .iter()
                    .chain(std::iter::repeat(&false))
                    .take(6)
                    .fold(0, |value, bit| (value << 1) | usize::from(*bit));
                ALPHABET[value] as char
            })
            .collect()
    };
    let standard_alphabet = ours.replace('-', "+").replace('_', "/");
    let mut cursors = vec![
        String::new(),
        "=".to_owned(),
        "!!!!".to_owned(),
        "A".repeat(40 * 1024),
        base64(&[0xAB; 39]),
        base64(&[0xAB; 41]),
        base64(&[0xAB; 4096]),
        format!("{ours}=="),
        format!("{ours}AA"),
        ours[..ours.len() - 1].to_owned(),
        format!(" {ours}"),
        format!("{ours}\u{0}"),
        theirs.clone(),
        "' OR 1=1 --".to_owned(),
        "%".to_owned(),
        "\u{ff}\u{fe}".to_owned(),
    ];
    if standard_alphabet != ours {
        cursors.push(standard_alphabet);
    }
    let mut attempts: Vec<Attempt> = cursors
        .iter()
        .map(|cursor| {
            let path = format!("/api/v1/contacts?cursor={}", encode_segment(cursor));
            Attempt::refused(
                format!("cursor {cursor:.80?}"),
                request(&app, Method::GET, &path, None),
                400,
                Some("invalid_cursor"),
            )
        })
        .collect();
    for query in [
        "cursor=%FF",
        "cursor=%C0%AF",
        "cursor=%00",
        "cursor=%",
        "cursor=+",
    ] {
        attempts.push(Attempt::refused(
            query,
            request(
                &app,
                Method::GET,
                &format!("/api/v1/contacts?{query}"),
                None,
            ),
            400,
            Some("invalid_cursor"),
        ));
    }
    for query in [
        format!("cursor={ours}&cursor={theirs}"),
        format!("cursor[]={ours}"),
        "limit=1;DROP%20TABLE%20contacts".to_owned(),
        "limit=%FF".to_owned(),
    ] {
        attempts.push(Attempt::refused(
            query.clone(),
            request(
                &app,
                Method::GET,
                &format!("/api/v1/contacts?{query}"),
                None,
            ),
            400,
            None,
        ));
    }
    // Our cursor, presented by the other company, is as foreign as theirs is to us.
    let path = format!("/api/v1/contacts?cursor={ours}");
    attempts.push(Attempt::refused(
        "our cursor presented by the other company",
        Request::builder()
            .uri(&path)
            .header(header::AUTHORIZATION, format!("Bearer {other_key}"))
            .body(Body::empty())
            .unwrap(),
        400,
        Some("invalid_cursor"),
    ));
    assert_all_refused(&app, attempts).await;
}
contract_test!(a_garbage_or_foreign_cursor_is_refused);
