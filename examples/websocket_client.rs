//! A websocket client of the dispatcher (TeaL's protocol, see docs/teal.md): connects
//! with the dispatcher's Basic authentication (user `anonymous`, the password from
//! `POWENS_RELAY_DISPATCHER_PASSWORD`), registers to the Powens domains given, and
//! prints each frame the dispatcher pushes as one line on standard output.
//!
//! ```sh
//! POWENS_RELAY_DISPATCHER_PASSWORD=pw cargo run --example websocket_client -- \
//!     ws://127.0.0.1:8080/websocket sandbox.biapi.pro
//! ```
//!
//! `--count N` exits after N frames. While the dispatcher is not listening yet (the
//! connection is refused), it tries again for up to 120 s.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const PASSWORD_ENV: &str = "POWENS_RELAY_DISPATCHER_PASSWORD";
const USAGE: &str = "usage: websocket_client [--count N] ws://HOST:PORT/websocket DOMAIN...";
const CONNECT_FOR: Duration = Duration::from_secs(120);

type Error = Box<dyn std::error::Error>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let mut count = None;
    let mut positional = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--count" => count = Some(args.next().ok_or(USAGE)?.parse::<u64>()?),
            _ => positional.push(arg),
        }
    }
    let (url, domains) = positional.split_first().ok_or(USAGE)?;
    if domains.is_empty() {
        return Err(USAGE.into());
    }
    let password = std::env::var(PASSWORD_ENV).map_err(|_| format!("{PASSWORD_ENV} is not set"))?;

    let mut request = url.as_str().into_client_request()?;
    let credentials = STANDARD.encode(format!("anonymous:{password}"));
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Basic {credentials}"))?,
    );
    let deadline = Instant::now() + CONNECT_FOR;
    let mut socket = loop {
        match tokio_tungstenite::connect_async(request.clone()).await {
            Ok((socket, _)) => break socket,
            Err(tokio_tungstenite::tungstenite::Error::Io(e))
                if e.kind() == std::io::ErrorKind::ConnectionRefused
                    && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(format!("cannot connect to {url}: {e}").into()),
        }
    };
    // TeaL's ClientMessage: one frame per registration. There is no acknowledgement.
    for domain in domains {
        let frame = serde_json::json!({
            "register_to": {"type": "powens_domain", "powens_domain": domain}
        });
        socket.send(Message::text(frame.to_string())).await?;
    }
    eprintln!("connected to {url}, registered to {}", domains.join(", "));

    let mut received = 0;
    while count.is_none_or(|n| received < n) {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                println!("{text}");
                received += 1;
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(format!("the dispatcher closed the connection: {frame:?}").into());
            }
            // Pings are answered by the library; nothing else is sent.
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err("the connection ended".into()),
        }
    }
    socket.close(None).await?;
    Ok(())
}
