//! Headers too large, too many, or not ASCII: through the router, and on the real server's
//! socket, where the HTTP layer itself must answer in the SPEC shape.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, header};

use super::{Attempt, Seeded, assert_all_refused, seeded};
use crate::helpers::{
    ServerProcess, TestDatabase, assert_spec_refusal, contract_test, runtime, send_raw,
};

/// A request with exactly these headers (no key unless one is among them) and this body.
fn with_headers(
    method: Method,
    path: &str,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: &str,
) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::from(body.to_owned()))
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().append(name, value);
    }
    request
}

/// Heads over the router's limits (64 KiB, 200 headers) are refused with 431 before any
/// other check; smaller oddities get the usual refusal.
async fn an_absurd_header_gets_an_error_in_the_spec_shape() {
    let Seeded { app, .. } = seeded().await;
    let value = |text: String| HeaderValue::from_str(&text).unwrap();
    let bearer = value(format!("Bearer {}", app.key));
    let json_type = HeaderValue::from_static("application/json");
    let hundred_kib = "A".repeat(100 * 1024);
    let ten_kib = "x".repeat(10 * 1024);
    let create = r#"{"ext_id": "crm-9"}"#;
    let junk = |count: usize| -> Vec<(HeaderName, HeaderValue)> {
        (0..count)
            .map(|index| {
                (
                    HeaderName::try_from(format!("x-junk-{index}")).unwrap(),
                    HeaderValue::from_static("junk"),
                )
            })
            .collect()
    };
    let case = |story: &str,
                method: Method,
                headers: Vec<(HeaderName, HeaderValue)>,
                body: &str,
                status: u16,
                code: &'static str| {
        Attempt::refused(
            story,
            with_headers(method, "/api/v1/contacts", headers, body),
            status,
            Some(code),
        )
    };
    let attempts = vec![
        case(
            "an Authorization of 100 KiB",
            Method::POST,
            vec![
                (
                    header::AUTHORIZATION,
                    value(format!("Bearer {hundred_kib}")),
                ),
                (header::CONTENT_TYPE, json_type.clone()),
            ],
            create,
            431,
            "headers_too_large",
        ),
        case(
            "an Authorization of 100 KiB without a scheme",
            Method::GET,
            vec![(header::AUTHORIZATION, value(hundred_kib.clone()))],
            "",
            431,
            "headers_too_large",
        ),
        case(
            "the real key followed by 100 KiB",
            Method::POST,
            vec![
                (
                    header::AUTHORIZATION,
                    value(format!("Bearer {} {hundred_kib}", app.key)),
                ),
                (header::CONTENT_TYPE, json_type.clone()),
            ],
            create,
            431,
            "headers_too_large",
        ),
        case(
            "1,000 headers and no key",
            Method::POST,
            junk(1000),
            create,
            431,
            "headers_too_large",
        ),
        case(
            "1,000 Authorization headers, none of them a key",
            Method::GET,
            (0..1000)
                .map(|index| {
                    (
                        header::AUTHORIZATION,
                        value(format!("Bearer cd_forged_{index}")),
                    )
                })
                .collect(),
            "",
            431,
            "headers_too_large",
        ),
        case(
            "1,000 headers and a body that is not JSON",
            Method::POST,
            [
                vec![
                    (header::AUTHORIZATION, bearer.clone()),
                    (header::CONTENT_TYPE, json_type.clone()),
                ],
                junk(1000),
            ]
            .concat(),
            "{\"ext_id\": ",
            431,
            "headers_too_large",
        ),
        case(
            "1,000 Content-Type headers, the first not JSON",
            Method::POST,
            [
                vec![(header::AUTHORIZATION, bearer.clone())],
                (0..1000)
                    .map(|_| (header::CONTENT_TYPE, HeaderValue::from_static("text/plain")))
                    .collect(),
            ]
            .concat(),
            create,
            431,
            "headers_too_large",
        ),
        case(
            "a Content-Type of 10 KiB",
            Method::POST,
            vec![
                (header::AUTHORIZATION, bearer.clone()),
                (
                    header::CONTENT_TYPE,
                    value(format!("application/{ten_kib}")),
                ),
            ],
            create,
            415,
            "unsupported_media_type",
        ),
        case(
            "a JSON Content-Type with 10 KiB of parameters, and a cut body",
            Method::POST,
            vec![
                (header::AUTHORIZATION, bearer.clone()),
                (
                    header::CONTENT_TYPE,
                    value(format!("application/json; {}", "p=v; ".repeat(2048))),
                ),
            ],
            "{\"ext_id\": ",
            400,
            "invalid_json",
        ),
        case(
            "a Content-Type with bytes that are not ASCII",
            Method::POST,
            vec![
                (header::AUTHORIZATION, bearer.clone()),
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_bytes(b"application/json\xff").unwrap(),
                ),
            ],
            create,
            415,
            "unsupported_media_type",
        ),
        case(
            "a Content-Type of application/json in Latin-1 look-alike bytes",
            Method::POST,
            vec![
                (header::AUTHORIZATION, bearer.clone()),
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_bytes(b"application/js\xf6n").unwrap(),
                ),
            ],
            create,
            415,
            "unsupported_media_type",
        ),
        case(
            "an Authorization with bytes that are not ASCII",
            Method::GET,
            vec![(
                header::AUTHORIZATION,
                HeaderValue::from_bytes(b"Bearer \xff\xfe\xfd").unwrap(),
            )],
            "",
            401,
            "unauthorized",
        ),
        case(
            "the real key with a byte that is not ASCII after it",
            Method::GET,
            vec![(
                header::AUTHORIZATION,
                HeaderValue::from_bytes(format!("Bearer {}\u{ff}", app.key).as_bytes()).unwrap(),
            )],
            "",
            401,
            "unauthorized",
        ),
        case(
            "a header name of 10 KiB and no key",
            Method::GET,
            vec![(
                HeaderName::try_from(format!("x-{}", "a".repeat(10 * 1024))).unwrap(),
                HeaderValue::from_static("v"),
            )],
            "",
            401,
            "unauthorized",
        ),
        case(
            "an X-Request-Id of 100 KiB on a refused write",
            Method::POST,
            vec![
                (header::AUTHORIZATION, bearer.clone()),
                (header::CONTENT_TYPE, json_type.clone()),
                (
                    HeaderName::from_static("x-request-id"),
                    value(hundred_kib.clone()),
                ),
            ],
            "{\"ext_id\": ",
            431,
            "headers_too_large",
        ),
        case(
            "an X-Request-Id with bytes that are not ASCII on a refused write",
            Method::POST,
            vec![
                (header::AUTHORIZATION, bearer.clone()),
                (header::CONTENT_TYPE, json_type.clone()),
                (
                    HeaderName::from_static("x-request-id"),
                    HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
                ),
            ],
            "{\"ext_id\": ",
            400,
            "invalid_json",
        ),
    ];
    assert_all_refused(&app, attempts).await;
}
contract_test!(an_absurd_header_gets_an_error_in_the_spec_shape);

#[test]
fn a_header_of_a_mebibyte_sent_to_the_real_server_gets_an_error_in_the_spec_shape() {
    let database = runtime().block_on(TestDatabase::create(crate::helpers::Backend::Sqlite));
    let server = ServerProcess::start(&database.url, &[]);
    let head = format!(
        "GET /api/v1/contacts HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
         Connection: close\r\n\r\n",
        "A".repeat(1024 * 1024)
    );
    let (status, body) = send_raw(&server, head.as_bytes());
    assert_spec_refusal(status, &body);
}

#[test]
fn a_thousand_headers_sent_to_the_real_server_get_an_error_in_the_spec_shape() {
    let database = runtime().block_on(TestDatabase::create(crate::helpers::Backend::Sqlite));
    let server = ServerProcess::start(&database.url, &[]);
    let junk: String = (0..1000)
        .map(|index| format!("X-Junk-{index}: junk\r\n"))
        .collect();
    let head = format!(
        "GET /api/v1/contacts HTTP/1.1\r\nHost: localhost\r\n{junk}Connection: close\r\n\r\n"
    );
    let (status, body) = send_raw(&server, head.as_bytes());
    assert_spec_refusal(status, &body);
}
