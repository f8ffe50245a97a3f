//! The dashboard's stylesheet and script, embedded in the binary: the dashboard needs
//! nothing from the network, so it works on a closed one.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::page::PageError;

/// Each asset: its name in the URL, its content type, its bytes.
const ASSETS: [(&str, &str, &str); 2] = [
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_str!("../../../assets/dashboard.css"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../assets/dashboard.js"),
    ),
];

/// `GET /dashboard/assets/{name}`. Assets change only with the binary, so a browser may
/// keep them an hour without asking.
pub async fn asset(Path(name): Path<String>) -> Result<Response, PageError> {
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(asset, ..)| *asset == name)
        .ok_or(PageError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        *body,
    )
        .into_response())
}
