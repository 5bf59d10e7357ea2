//! Large bodies: the relay's peak RSS while it relays one 32 MiB webhook, and 64
//! concurrent 1 MiB webhooks, each in a relay process of its own (a fresh peak).

use std::net::SocketAddr;
use std::path::Path;

use serde_json::{Value, json};

use crate::process;
use crate::runs::{body, exchange, raw_request};
use crate::{Args, SECRET};

/// Relays `count` webhooks of `size` bytes at once through a new relay process; the
/// statuses and the process's peak RSS.
async fn scenario(
    args: &Args,
    prefix: &str,
    dir: &Path,
    size: usize,
    count: usize,
) -> Result<Value, Box<dyn std::error::Error>> {
    let secret_path = dir.join("secret");
    let data_dir = dir.join("data");
    let (mut child, addr) =
        process::spawn_relay(args, prefix, &secret_path, &data_dir, &args.relay_set)?;
    let idle_kib = process::peak_rss_kib(child.id());
    let secret = powens_webhooks::Secret::new(SECRET)?;
    let mut tasks = Vec::new();
    for id in 0..count {
        let request = raw_request(addr, &body(id as u64, size), &secret);
        tasks.push(tokio::spawn(send(addr, request)));
    }
    let mut accepted = 0;
    for task in tasks {
        if task.await?? == 204 {
            accepted += 1;
        }
    }
    let peak_kib = process::peak_rss_kib(child.id());
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait()?;
    let body_mib = (size * count) as f64 / 1048576.0;
    let peak_mib = peak_kib as f64 / 1024.0;
    eprintln!(
        "{count} × {:.0} MiB: {accepted} accepted, relay peak RSS {peak_mib:.1} MiB \
         ({:.2} × the bodies; {:.1} MiB before)",
        size as f64 / 1048576.0,
        peak_mib / body_mib,
        idle_kib as f64 / 1024.0
    );
    Ok(json!({
        "bodies": count,
        "body_bytes": size,
        "accepted": accepted,
        "idle_rss_mib": idle_kib as f64 / 1024.0,
        "peak_rss_mib": peak_mib,
        "peak_over_bodies": peak_mib / body_mib,
    }))
}

async fn send(addr: SocketAddr, request: Vec<u8>) -> std::io::Result<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut buffer = Vec::with_capacity(1024);
    exchange(&mut stream, &request, &mut buffer).await
}

/// Both scenarios: one 32 MiB webhook, then 64 of 1 MiB at once.
pub async fn large_bodies(
    args: &Args,
    prefix: &str,
    dir: &Path,
) -> Result<Value, Box<dyn std::error::Error>> {
    let one = scenario(args, prefix, dir, 32 * 1024 * 1024, 1).await?;
    let many = scenario(args, prefix, dir, 1024 * 1024, 64).await?;
    Ok(json!({ "one_32_mib": one, "concurrent_64_of_1_mib": many }))
}
