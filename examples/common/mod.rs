//! What the load harness (`examples/load/`) and the fan-out benchmark
//! (`examples/fanout.rs`) share: `/proc` readings, the release binary, a private queue.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lapin::Channel;
use lapin::options::QueueDeclareOptions;
use powens_webhooks::TealExchange;
use powens_webhooks::relay::testing::declare_exchanges;

/// Linux's clock tick (`sysconf(_SC_CLK_TCK)`, 100 on every common configuration).
const TICK: Duration = Duration::from_millis(10);

/// User + system CPU time of process `pid` (`self` for this one).
pub fn cpu_time(pid: &str) -> Duration {
    let (user, system) = cpu_ticks(pid);
    ticks(user.saturating_add(system))
}

/// `count` clock ticks as a duration.
pub fn ticks(count: u64) -> Duration {
    TICK * u32::try_from(count).unwrap_or(u32::MAX)
}

/// User and system clock ticks of `pid`, from `/proc/<pid>/stat` (0 if unreadable).
pub fn cpu_ticks(pid: &str) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name (which may hold spaces, within parentheses): the state is
    // field 0, utime 11 and stime 12.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let mut fields = after.split_whitespace().skip(11);
    let mut next = || fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
    (next(), next())
}

/// A memory line of `/proc/<pid>/status` (`"VmRSS:"`, `"VmHWM:"`), in KiB.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// `powens-relay` from the same target directory as the running example, or the one
/// `POWENS_RELAY_BINARY` names (another build, to measure two versions side by side).
pub fn relay_binary() -> Result<PathBuf, Box<dyn std::error::Error>> {
    if let Some(path) = std::env::var_os("POWENS_RELAY_BINARY") {
        let path = PathBuf::from(path);
        return match path.is_file() {
            true => Ok(path),
            false => Err(format!("POWENS_RELAY_BINARY: no file at {}", path.display()).into()),
        };
    }
    let exe = std::env::current_exe()?;
    exe.parent()
        .and_then(Path::parent)
        .map(|target| target.join("powens-relay"))
        .filter(|b| b.exists())
        .ok_or_else(|| "build the binary first: cargo build --release".into())
}

/// Declares the webhook exchange of `prefix` (TeaL's flags) and a private (exclusive, auto-delete)
/// queue bound to it with `key`; returns the queue's name.
pub async fn private_queue(
    channel: &Channel,
    prefix: &str,
    key: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    declare_exchanges(
        channel,
        prefix,
        false,
        &[TealExchange::PowensDomainWebhooks],
    )
    .await?;
    let exchange = TealExchange::PowensDomainWebhooks.name(prefix);
    let private = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    let queue = channel
        .queue_declare("".into(), private, Default::default())
        .await?;
    channel
        .queue_bind(
            queue.name().clone(),
            exchange.as_str().into(),
            key.into(),
            Default::default(),
            Default::default(),
        )
        .await?;
    Ok(queue.name().as_str().to_owned())
}
