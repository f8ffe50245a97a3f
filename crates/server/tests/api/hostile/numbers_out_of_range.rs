//! Phone numbers and custom numbers out of range, not finite, or not numbers at all.

use axum::http::Method;
use serde_json::json;

use super::{Attempt, Seeded, assert_all_refused, at_every_route_of, request, seeded};
use crate::helpers::{contact_path, contract_test, encode_segment};

async fn a_phone_number_out_of_range_is_refused() {
    let Seeded { app, .. } = seeded().await;
    let thousand_digits = "9".repeat(1000);
    let mut attempts = Vec::new();
    for (raw, code) in [
        ("1e309", None),
        ("-1e309", None),
        (thousand_digits.as_str(), None),
        ("-0", Some("invalid_phone_number")),
        ("-0.0", Some("invalid_phone_number")),
        ("0", Some("invalid_phone_number")),
        ("-4155552671", Some("invalid_phone_number")),
        ("-14155552671", Some("invalid_phone_number")),
        ("1e20", Some("invalid_phone_number")),
        ("9007199254740993.0", Some("invalid_phone_number")),
        ("18446744073709551616", Some("invalid_phone_number")),
        ("18446744073709551615", Some("invalid_phone_number")),
        ("4155552671.5", Some("invalid_phone_number")),
        ("1e-7", Some("invalid_phone_number")),
        (r#""+1 415 555 2671\u0000""#, Some("invalid_phone_number")),
        (r#""-4155552671""#, Some("invalid_phone_number")),
        (r#""1e10""#, Some("invalid_phone_number")),
        (r#""4155552671e0""#, Some("invalid_phone_number")),
        (r#""NaN""#, Some("invalid_phone_number")),
        (r#""Infinity""#, Some("invalid_phone_number")),
        (r#""+1 415 555 2671 ext. 12""#, Some("invalid_phone_number")),
        (
            r#""+1\u2009415\u2009555\u20092671""#,
            Some("invalid_phone_number"),
        ),
        ("true", Some("invalid_request")),
        ("[4155552671]", Some("invalid_request")),
        (r#"{"number": 4155552671}"#, Some("invalid_request")),
    ] {
        for (method, path, body) in [
            (
                Method::POST,
                "/api/v1/contacts".to_owned(),
                format!(r#"{{"ext_id": "crm-9", "phone_number": {raw}}}"#),
            ),
            (
                Method::PATCH,
                "/api/v1/contacts".to_owned(),
                format!(r#"{{"id": "alt:ext_id:crm-1", "phone_number": {raw}}}"#),
            ),
            (
                Method::PATCH,
                contact_path("alt:ext_id:crm-2"),
                format!(r#"{{"phone_number": {raw}}}"#),
            ),
        ] {
            attempts.push(Attempt::refused(
                format!("{method} {path} {body:.120}"),
                request(&app, method, &path, Some(body.as_bytes())),
                400,
                code,
            ));
        }
    }
    for phone in [
        "-4155552671",
        "-0",
        "1e20",
        "18446744073709551616",
        "4155552671e0",
        "+1 415 555 2671\u{0}",
    ] {
        attempts.extend(at_every_route_of(
            &app,
            "contacts",
            &encode_segment(&format!("alt:phone_number:{phone}")),
            400,
            Some("invalid_identifier"),
        ));
    }
    assert_all_refused(&app, attempts).await;
}
contract_test!(a_phone_number_out_of_range_is_refused);

async fn a_custom_number_that_is_not_finite_or_not_a_number_is_refused() {
    let Seeded { app, .. } = seeded().await;
    let four_hundred_digits = "9".repeat(400);
    let quoted_digits = format!("\"{four_hundred_digits}\"");
    let mut attempts = Vec::new();
    for (raw, code) in [
        ("1e309", None),
        ("-1e309", None),
        ("1e400", None),
        (four_hundred_digits.as_str(), None),
        (r#""1e309""#, Some("invalid_custom_field_value")),
        (r#""-1e309""#, Some("invalid_custom_field_value")),
        (r#""1e400""#, Some("invalid_custom_field_value")),
        (quoted_digits.as_str(), Some("invalid_custom_field_value")),
        (r#""NaN""#, Some("invalid_custom_field_value")),
        (r#""nan""#, Some("invalid_custom_field_value")),
        (r#""Infinity""#, Some("invalid_custom_field_value")),
        (r#""-Infinity""#, Some("invalid_custom_field_value")),
        (r#""inf""#, Some("invalid_custom_field_value")),
        (r#""+1""#, Some("invalid_custom_field_value")),
        (r#"".5""#, Some("invalid_custom_field_value")),
        (r#""5.""#, Some("invalid_custom_field_value")),
        (r#""0x10""#, Some("invalid_custom_field_value")),
        (r#""1_000""#, Some("invalid_custom_field_value")),
        (r#""1,5""#, Some("invalid_custom_field_value")),
        (r#""12 seats""#, Some("invalid_custom_field_value")),
        (r#""""#, Some("invalid_custom_field_value")),
        (r#"" ""#, Some("invalid_custom_field_value")),
        (r#""١٢""#, Some("invalid_custom_field_value")),
        (r#""１２""#, Some("invalid_custom_field_value")),
        ("true", Some("invalid_custom_field_value")),
        ("null", Some("invalid_custom_field_value")),
        ("[12]", Some("invalid_custom_field_value")),
        (r#"{"value": 12}"#, Some("invalid_custom_field_value")),
    ] {
        for (method, body) in [
            (
                Method::POST,
                format!(
                    r#"{{"ext_id": "crm-9", "custom_fields": [{{"key": "seats", "value": {raw}}}]}}"#
                ),
            ),
            (
                Method::PATCH,
                format!(
                    r#"{{"id": "alt:ext_id:crm-1", "custom_fields": {{"set": [{{"key": "seats", "value": {raw}}}]}}}}"#
                ),
            ),
        ] {
            attempts.push(Attempt::refused(
                format!("{method} {body:.160}"),
                request(&app, method, "/api/v1/contacts", Some(body.as_bytes())),
                400,
                code,
            ));
        }
    }
    assert_all_refused(&app, attempts).await;
}
contract_test!(a_custom_number_that_is_not_finite_or_not_a_number_is_refused);

async fn negative_zero_and_huge_finite_numbers_are_stored_as_the_number_they_are() {
    let Seeded { app, .. } = seeded().await;
    for (index, (raw, expected)) in [
        ("-0", 0.0),
        ("-0.0", 0.0),
        (r#""-0""#, 0.0),
        (r#""-0.000""#, 0.0),
        ("-0e5", 0.0),
        ("123456789012345678901234567890", 1.2345678901234568e29),
        (r#""123456789012345678901234567890""#, 1.2345678901234568e29),
        ("1.7976931348623157e308", f64::MAX),
        ("-1.7976931348623157e308", f64::MIN),
        ("9007199254740993", 9_007_199_254_740_992.0),
    ]
    .into_iter()
    .enumerate()
    {
        let body = format!(
            r#"{{"ext_id": "number-{index}", "custom_fields": [{{"key": "seats", "value": {raw}}}]}}"#
        );
        let response = app
            .send(request(
                &app,
                Method::POST,
                "/api/v1/contacts",
                Some(body.as_bytes()),
            ))
            .await;
        response.assert_status(200);
        let stored = app.get_contact(&format!("alt:ext_id:number-{index}")).await;
        let value = &stored.body["custom_fields"][0]["value"];
        assert_eq!(value.as_f64(), Some(expected), "{raw} came back as {value}");
        if expected == 0.0 {
            // Zero has one form: a client must never see `-0` or `-0.0`.
            assert_eq!(value, &json!(0), "{raw} came back as {value}");
        }
    }
}
contract_test!(negative_zero_and_huge_finite_numbers_are_stored_as_the_number_they_are);
