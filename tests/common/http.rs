//! One HTTP/1.1 request to a relay on a new connection: the one HTTP client of the test
//! crates (`tests/it` and `tests/cluster` include this file), so that each test does not
//! carry its own.
// Each crate reads the fields it needs.
#![allow(dead_code)]

use std::net::SocketAddr;

use axum::body::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Full};

/// The relay's answer.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// The `x-request-id` header, if any.
    pub request_id: Option<String>,
    /// The body, as text.
    pub body: String,
    /// Every header.
    pub headers: http::HeaderMap,
}

/// Sends `request` to `addr` on a new connection: the answer, or `None` if the
/// connection was refused or dropped before one came.
pub async fn exchange(addr: SocketAddr, request: Request<Full<Bytes>>) -> Option<Answer> {
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .ok()?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().expect("a visible-ASCII Location").to_owned());
    let request_id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().expect("a visible-ASCII x-request-id").to_owned());
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    driver.abort();
    Some(Answer {
        status,
        location,
        request_id,
        body: String::from_utf8_lossy(&body).into_owned(),
        headers,
    })
}
