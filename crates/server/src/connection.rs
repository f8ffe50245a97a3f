//! What every accepted connection is wrapped in before hyper reads it: a write that the
//! client does not take within the stall timeout ends the connection, and the refusals hyper
//! answers on its own, before any request reaches the router, carry the API's error body.
//! See `docs/robustness.md#timeouts-and-connection-limits`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_io_timeout::TimeoutStream;

use crate::http::error::ApiError;
use crate::http::json_body;

/// A client connection: writes time out after `stall`, and hyper's own refusals are
/// answered in the error shape.
pub type ClientIo = ShapedRefusals<Pin<Box<TimeoutStream<TcpStream>>>>;

/// Wraps an accepted stream for hyper.
pub fn client_io(stream: TcpStream, stall: Duration) -> ClientIo {
    let mut stream = TimeoutStream::new(stream);
    stream.set_write_timeout(Some(stall));
    ShapedRefusals {
        inner: Box::pin(stream),
        replacement: None,
    }
}

/// The complete response, with the API's error body, sent instead of a bare refusal.
pub fn refusal(error: &ApiError, status_line: &str) -> Vec<u8> {
    let body = json_body(&error.body()).unwrap_or_default();
    let mut response = format!(
        "{status_line}\r\ncontent-type: application/json; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    response
}

/// Replaces the responses hyper writes on its own, when a request head cannot be parsed, by
/// the same responses with the API's error body.
///
/// hyper answers a head it refuses (a URI past its 64 KiB, more headers than it parses,
/// malformed framing such as two different `Content-Length`s) itself, with an empty body, and
/// offers no hook to shape that answer. It is recognisable on the wire: a `400`, `414` or
/// `431` head with `content-length: 0` and nothing after it, written as the whole of one
/// write. The router never answers one of those statuses without a body, so nothing else
/// matches.
#[derive(Debug)]
pub struct ShapedRefusals<IO> {
    inner: IO,
    /// The shaped response being written in place of hyper's, and how much of it is out.
    replacement: Option<Replacement>,
}

#[derive(Debug)]
struct Replacement {
    bytes: Vec<u8>,
    written: usize,
    /// The length of what hyper asked to write, reported written once ours is.
    stands_for: usize,
}

/// The longest bare refusal hyper writes: a status line, `content-length: 0`, a date.
const MAX_BARE_REFUSAL: usize = 256;

/// The shaped response for a bare refusal hyper is writing, if `buf` is one. Every response
/// passes through here, so anything that is not short and shaped like one is let through
/// on a look at its length and first bytes.
fn shaped(buf: &[u8]) -> Option<Vec<u8>> {
    if buf.len() > MAX_BARE_REFUSAL || !buf.starts_with(b"HTTP/1.1 4") {
        return None;
    }
    let head = std::str::from_utf8(buf).ok()?;
    let head = head.strip_suffix("\r\n\r\n")?;
    let (status_line, headers) = head.split_once("\r\n")?;
    let error = match status_line.strip_prefix("HTTP/1.1 ")?.get(..3)? {
        "400" => ApiError::MalformedRequest,
        "414" => ApiError::UriTooLong,
        "431" => ApiError::HeadersTooLarge,
        _ => return None,
    };
    let empty = headers
        .split("\r\n")
        .any(|header| header.eq_ignore_ascii_case("content-length: 0"));
    empty.then(|| refusal(&error, status_line))
}

impl<IO: AsyncRead + Unpin> AsyncRead for ShapedRefusals<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> ShapedRefusals<IO> {
    /// Writes what is left of the replacement; ready once it is all out.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<usize>>> {
        let Some(replacement) = self.replacement.as_mut() else {
            return Poll::Ready(Ok(None));
        };
        while replacement.written < replacement.bytes.len() {
            let rest = &replacement.bytes[replacement.written..];
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, rest))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            replacement.written += written;
        }
        let stands_for = replacement.stands_for;
        self.replacement = None;
        Poll::Ready(Ok(Some(stands_for)))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for ShapedRefusals<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.replacement.is_none() {
            match shaped(buf) {
                Some(bytes) => {
                    self.replacement = Some(Replacement {
                        bytes,
                        written: 0,
                        stands_for: buf.len(),
                    });
                }
                None => return Pin::new(&mut self.inner).poll_write(cx, buf),
            }
        }
        // hyper asks again with the same bytes until told they are written.
        let written = ready!(self.poll_replacement(cx))?;
        Poll::Ready(Ok(written.unwrap_or(0)))
    }

    /// Vectored writes go straight through (hyper then writes a response's head and body
    /// without copying them into one buffer, which cost a list page a fifth of its server
    /// CPU: 528 against 417 µs in the benchmark); a bare refusal is one slice, and goes the
    /// way of [`Self::poll_write`].
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut written = bufs.iter().filter(|buf| !buf.is_empty());
        if let (Some(only), None) = (written.next(), written.next())
            && (self.replacement.is_some() || shaped(only).is_some())
        {
            return self.poll_write(cx, only);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bare_refusal_head_is_replaced() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\
                     date: Tue, 01 Dec 2026 14:00:00 GMT\r\n\r\n";
        let answer = String::from_utf8(shaped(bare).expect("a bare 431")).expect("utf-8");
        assert!(answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        let body = answer.split("\r\n\r\n").nth(1).expect("a body");
        let body: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(body["error"], 431);
        assert_eq!(body["code"], "headers_too_large");
        for not_bare in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
        ] {
            assert!(
                shaped(not_bare).is_none(),
                "{}",
                String::from_utf8_lossy(not_bare)
            );
        }
    }
}
