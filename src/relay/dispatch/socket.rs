//! One websocket client: its frames read and answered, its queue written, pings sent,
//! and its end (with a close code saying why) counted.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::time::{Instant, timeout};

use super::Context;
use super::frames::{Kind, failure_frame};
use super::hub::Connection;
use super::protocol::{ClientMessage, FrameError};

/// How a connection ends.
#[derive(Debug)]
enum End {
    /// We close it with this code and reason.
    Close {
        code: u16,
        reason: String,
        label: &'static str,
    },
    /// It is gone (closed by the client, dead, or unwritable).
    Gone(&'static str),
}

impl End {
    fn close(code: u16, reason: impl Into<String>, label: &'static str) -> Self {
        Self::Close {
            code,
            reason: reason.into(),
            label,
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Self::Close { label, .. } | Self::Gone(label) => label,
        }
    }
}

impl From<FrameError> for End {
    fn from(error: FrameError) -> Self {
        Self::close(error.code, error.reason, "invalid_frame")
    }
}

type Sink = SplitSink<WebSocket, Message>;

/// Serves one client until it leaves, is closed, or the dispatcher shuts down.
pub(super) async fn serve_client(socket: WebSocket, ctx: std::sync::Arc<Context>) {
    let Connection {
        id,
        mut queue,
        overflow,
        mut shutdown,
    } = ctx.hub.connect();
    let (mut sink, mut stream) = socket.split();
    let every = ctx.ping_interval;
    let mut ping = tokio::time::interval_at(Instant::now() + every, every);
    let mut heard = Instant::now();
    let end = loop {
        tokio::select! {
            biased;
            () = async { drop(shutdown.wait_for(|down| *down).await) } => {
                break End::close(1001, "the server is shutting down", "shutdown");
            }
            () = overflow.notified() => {
                break End::close(
                    1013,
                    "too many messages waiting for this client; reconnect",
                    "overflow",
                );
            }
            Some(outbound) = queue.recv() => {
                // A client that does not read for a ping interval is as good as dead.
                match timeout(every, sink.send(Message::Text(outbound.frame.clone()))).await {
                    Ok(Ok(())) => ctx.hub.metrics.pushed(outbound.kind.label()),
                    Ok(Err(_)) => break End::Gone("write_failed"),
                    Err(_) => break End::Gone("write_timeout"),
                }
                // Dropped once written: its share of the broker delivery is released.
                drop(outbound);
            }
            frame = stream.next() => {
                heard = Instant::now();
                match frame {
                    None | Some(Err(_)) => break End::Gone("client_gone"),
                    Some(Ok(Message::Close(_))) => break End::Gone("client_closed"),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Binary(_))) => {
                        break End::close(1003, "binary frames are not supported: send JSON text", "binary_frame");
                    }
                    Some(Ok(Message::Text(text))) => {
                        if let Err(end) = handle_frame(&ctx, id, &text, &mut sink).await {
                            break end;
                        }
                    }
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() > every * 2 {
                    break End::Gone("no_pong");
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break End::Gone("write_failed");
                }
            }
        }
    };
    match &end {
        End::Close { code, reason, .. } => {
            tracing::info!(client = id, code, reason = %reason, "websocket closed by the dispatcher");
            let frame = CloseFrame {
                code: *code,
                reason: Utf8Bytes::from(truncate(reason, 123)),
            };
            let _ = timeout(
                Duration::from_secs(1),
                sink.send(Message::Close(Some(frame))),
            )
            .await;
        }
        End::Gone("client_closed") => {
            // Flushes the close reply queued by the websocket layer.
            let _ = timeout(Duration::from_secs(1), sink.close()).await;
        }
        End::Gone(why) => tracing::debug!(client = id, why, "websocket client gone"),
    }
    ctx.hub.disconnect(id).await;
    ctx.hub.metrics.closed(end.label());
}

/// Handles one text frame: `create`, then `register_to`.
async fn handle_frame(ctx: &Context, id: u64, text: &str, sink: &mut Sink) -> Result<(), End> {
    let message = ClientMessage::parse(text)?;
    if let Some(create) = &message.create {
        let failure = match create.record(chrono::Utc::now()) {
            Ok((state, record)) => match ctx.store.put(&state, &record).await {
                Ok(()) => None,
                Err(e) => {
                    tracing::error!(error = %e, "a callback could not be stored");
                    Some("Callback could not be stored; try again later.".to_owned())
                }
            },
            Err(refused) => Some(refused.to_string()),
        };
        if let Some(detail) = failure {
            let frame = failure_frame(&create.state, &detail).map_err(|e| {
                tracing::error!(error = %e, "a callback_creation_failure frame could not be made");
                End::close(
                    1011,
                    "the server could not answer this frame",
                    "frame_encoding",
                )
            })?;
            if sink.send(Message::Text(frame)).await.is_err() {
                return Err(End::Gone("write_failed"));
            }
            ctx.hub
                .metrics
                .pushed(Kind::CallbackCreationFailure.label());
        }
    }
    // Unlike TeaL, a failed `create` does not skip `register_to`.
    if let Some(registration) = &message.register_to {
        let key = registration.binding()?;
        if let Err(e) = ctx.hub.register(id, key).await {
            tracing::warn!(error = %e, "a registration could not be bound");
            return Err(End::close(
                1011,
                "cannot register now: the message broker is unavailable; reconnect later",
                "broker_unavailable",
            ));
        }
    }
    Ok(())
}

/// At most `max` bytes of `text`, cut at a character boundary (a close reason is at
/// most 123 bytes).
fn truncate(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
