//! Bodies over the limit, announced or streamed, on every write route: a 413.

use axum::body::Body;
use axum::http::{HeaderValue, Method, header};
use serde_json::{Value, json};

use super::{Attempt, Seeded, assert_all_refused, request, seeded};
use crate::helpers::{TEST_BODY_LIMIT, contact_path, contract_test};

/// A JSON body that would be accepted, padded with whitespace to `len` bytes.
fn padded(body: &Value, len: usize) -> Vec<u8> {
    let mut bytes = body.to_string().into_bytes();
    bytes.resize(len, b' ');
    bytes
}

async fn a_body_over_the_limit_on_any_write_route_is_a_413_that_changes_nothing() {
    let Seeded { app, .. } = seeded().await;
    let writes = [
        (
            Method::POST,
            "/api/v1/contacts".to_owned(),
            json!({"ext_id": "crm-9"}),
        ),
        (
            Method::PATCH,
            "/api/v1/contacts".to_owned(),
            json!({"id": "alt:ext_id:crm-1", "first_name": "Mallory"}),
        ),
        (
            Method::PATCH,
            contact_path("alt:ext_id:crm-1"),
            json!({"first_name": "Mallory"}),
        ),
        (
            Method::POST,
            "/api/v1/custom-fields".to_owned(),
            json!({"key": "tier", "display_name": "Tier", "type": "text"}),
        ),
        (
            Method::PATCH,
            "/api/v1/custom-fields/plan".to_owned(),
            json!({"display_name": "Mallory"}),
        ),
    ];
    let mut attempts = Vec::new();
    for (method, path, body) in &writes {
        for len in [TEST_BODY_LIMIT + 1, 1024 * 1024] {
            let bytes = padded(body, len);
            let mut announced = request(&app, method.clone(), path, Some(&bytes));
            announced
                .headers_mut()
                .insert(header::CONTENT_LENGTH, len.into());
            let mut streamed = request(&app, method.clone(), path, None);
            streamed.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            *streamed.body_mut() = Body::from_stream(Body::from(bytes).into_data_stream());
            for (how, request) in [("announced", announced), ("streamed", streamed)] {
                attempts.push(Attempt::refused(
                    format!("{method} {path} with {len} bytes, {how}"),
                    request,
                    413,
                    Some("payload_too_large"),
                ));
            }
        }
    }
    assert_all_refused(&app, attempts).await;

    // At the limit, each write goes through: the refusals were the size's doing alone.
    for (method, path, body) in &writes {
        let bytes = padded(body, TEST_BODY_LIMIT);
        let response = app
            .send(request(&app, method.clone(), path, Some(&bytes)))
            .await;
        response.assert_status(200);
    }
}
contract_test!(a_body_over_the_limit_on_any_write_route_is_a_413_that_changes_nothing);
