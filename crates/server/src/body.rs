//! Request bodies, read whole before any handler sees them, bounded in size and in time.
//!
//! **Why drain an oversized body.** Many clients (Python's `http.client`, `requests`,
//! `urllib`) write the whole body before they read the answer. A server that answers 413 and
//! closes the socket with unread data makes the kernel reset the connection, and such a client
//! sees a broken pipe instead of the 413 and its message. So, as nginx does, the rest of an
//! oversized body is read and thrown away, up to [`DRAIN_BYTES`] or [`DRAIN_TIME`], whichever
//! comes first, before the answer is sent. A body still unread past that bound gets the 413
//! with `Connection: close`.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::time::{timeout_at, Instant};

use genroute_core::request::MAX_REQUEST_BYTES;

use crate::error::error;

/// How much of an oversized body is read and discarded, at most.
pub const DRAIN_BYTES: usize = 64 << 20;
/// How long an oversized body is drained, at most.
pub const DRAIN_TIME: Duration = Duration::from_secs(5);
/// How long a client may take to send a body within the limit.
pub const READ_TIME: Duration = Duration::from_secs(30);

fn too_large(drained: bool) -> Response {
    let mut resp = error(
        StatusCode::PAYLOAD_TOO_LARGE,
        Some("(body)"),
        &format!(
            "the body is larger than {} KiB; send a smaller request",
            MAX_REQUEST_BYTES / 1024
        ),
    );
    if !drained {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// Reads and discards the rest of `body`; true if it ended within the bounds.
async fn drain(mut body: axum::body::BodyDataStream, mut read: usize) -> bool {
    let deadline = Instant::now() + DRAIN_TIME;
    while read <= DRAIN_BYTES {
        match timeout_at(deadline, body.next()).await {
            Ok(Some(Ok(chunk))) => read += chunk.len(),
            Ok(None) => return true,
            Ok(Some(Err(_))) | Err(_) => return false,
        }
    }
    false
}

/// The middleware: buffers the body (at most [`MAX_REQUEST_BYTES`]) and hands it on.
pub async fn bounded(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut stream = body.into_data_stream();
    if declared.is_some_and(|n| n > MAX_REQUEST_BYTES as u64) {
        return too_large(drain(stream, 0).await);
    }
    let mut buf: Vec<u8> = Vec::with_capacity(declared.unwrap_or(0) as usize);
    let deadline = Instant::now() + READ_TIME;
    loop {
        match timeout_at(deadline, stream.next()).await {
            Ok(None) => break,
            Ok(Some(Ok(chunk))) => {
                if buf.len() + chunk.len() > MAX_REQUEST_BYTES {
                    let read = buf.len() + chunk.len();
                    return too_large(drain(stream, read).await);
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(Some(Err(e))) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    Some("(body)"),
                    &format!("the body could not be read: {e}"),
                )
            }
            Err(_) => {
                let mut resp = error(
                    StatusCode::REQUEST_TIMEOUT,
                    Some("(body)"),
                    &format!("the body did not arrive within {} s", READ_TIME.as_secs()),
                );
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return resp.into_response();
            }
        }
    }
    next.run(Request::from_parts(parts, Body::from(Bytes::from(buf))))
        .await
}
