//! The relay and the raw publisher as processes of their own, as an operator runs them,
//! and what `/proc` says of a process: CPU time and peak memory.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::pace::{Load, Schedule};
use crate::runs::Run;
use crate::settings::Setting;
use crate::{Args, DOMAIN};

pub use crate::common::cpu_time;

/// CPU time a process spent: in all, and the kernel's part of it (system calls, and the
/// loopback network work they do for the receiving end), to tell what the relay spends
/// in its own code from what its sockets and thread wake-ups cost.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu {
    pub total: Duration,
    pub kernel: Duration,
}

impl Cpu {
    /// What `/proc` says of `pid` so far (`self` for this process), both parts from
    /// one reading.
    pub fn of(pid: &str) -> Self {
        let (user, system) = crate::common::cpu_ticks(pid);
        Self {
            total: crate::common::ticks(user.saturating_add(system)),
            kernel: crate::common::ticks(system),
        }
    }

    /// `pid`'s CPU time since `before`.
    pub fn since(pid: &str, before: Self) -> Self {
        let now = Self::of(pid);
        Self {
            total: now.total.saturating_sub(before.total),
            kernel: now.kernel.saturating_sub(before.kernel),
        }
    }
}

impl std::ops::Add for Cpu {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        Self {
            total: self.total + other.total,
            kernel: self.kernel + other.kernel,
        }
    }
}

/// Peak resident memory (`VmHWM`) of `pid`, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    crate::common::status_kib(pid, "VmHWM:")
}

/// The pid of the local RabbitMQ (the Erlang VM, `beam.smp`, running `rabbit`).
pub fn rabbitmq_pid() -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let text = String::from_utf8_lossy(&cmdline);
            (text.contains("beam.smp") && text.contains("rabbit")).then_some(pid)
        })
}

/// Lines of the relay's standard error kept to explain a relay that did not start.
const STDERR_TAIL: usize = 20;

/// `powens-relay serve` as a child: the run's broker, prefix and domain, a free port,
/// logs as an operator has them (info, JSON lines), drained so that they never block
/// it; then `settings`, each as its `POWENS_RELAY_*` variable.
pub fn spawn_relay(
    args: &Args,
    prefix: &str,
    secret_file: &Path,
    data_dir: &Path,
    settings: &[Setting],
) -> Result<(Child, SocketAddr), Box<dyn std::error::Error>> {
    // A free port, chosen here: the relay says where it listens only at level info.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut command = Command::new(crate::common::relay_binary()?);
    if let Some(workers) = args.relay_workers {
        command.env("TOKIO_WORKER_THREADS", workers.to_string());
    }
    let mut child = command
        .arg("serve")
        .env("POWENS_RELAY_LISTEN", addr.to_string())
        .env("POWENS_RELAY_AMQP_URL", &args.amqp_url)
        .env("POWENS_RELAY_EXCHANGE_PREFIX", prefix)
        .env("POWENS_RELAY_DATA_DIR", data_dir)
        .env(
            "POWENS_RELAY_DOMAINS",
            format!("{DOMAIN}=file:{}", secret_file.display()),
        )
        .env("POWENS_RELAY_LOG_FORMAT", "json")
        .env("RUST_LOG", &args.relay_log)
        .envs(settings.iter().map(|s| (s.env(), &s.value)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    // Drained so that the relay never blocks on a full pipe, whatever its log level;
    // the last lines kept, to say why a relay did not start.
    let stderr = BufReader::new(child.stderr.take().ok_or("no stderr")?);
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let kept = tail.clone();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let mut kept = kept
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if kept.len() == STDERR_TAIL {
                kept.pop_front();
            }
            kept.push_back(line);
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        if std::time::Instant::now() > deadline || child.try_wait()?.is_some() {
            let _ = child.kill();
            let _ = child.wait();
            // The reader thread sees the pipe close once the relay has gone.
            std::thread::sleep(Duration::from_millis(100));
            let said = tail
                .lock()
                .map(|t| Vec::from(t.clone()))
                .unwrap_or_default();
            return Err(format!(
                "the relay did not start listening; it said: {}",
                said.join(" / ")
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((child, addr))
}

/// What the raw publisher child reports: its run and its own CPU time.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct ChildReport {
    pub ok: u64,
    pub failed: u64,
    pub seconds: f64,
    pub latencies_us: Vec<u64>,
    pub cpu_us: u64,
    pub kernel_cpu_us: u64,
    /// The open loop's schedule.
    #[serde(default)]
    pub schedule: Option<Schedule>,
    /// The open loop: how late each request went.
    #[serde(default)]
    pub lags_us: Vec<u64>,
}

/// Runs this example again as the raw publisher (`--role raw`) to `amqp_url`, and reads
/// its report.
pub fn raw_child(
    args: &Args,
    amqp_url: &str,
    prefix: &str,
    first_id: u64,
    load: Load,
) -> Result<ChildReport, Box<dyn std::error::Error>> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["--role", "raw", "--prefix", prefix, "--first-id"])
        .arg(first_id.to_string())
        .args(["--connections", &args.connections.to_string()])
        .args(["--seconds", &args.seconds.to_string()])
        .args(["--body-bytes", &args.body_bytes.to_string()])
        .args(["--amqp-url", amqp_url]);
    if let Load::Open { rate } = load {
        command.args(["--rate", &rate.to_string()]);
    }
    let output = command.stderr(Stdio::inherit()).output()?;
    if !output.status.success() {
        return Err("the raw publisher failed".into());
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

impl ChildReport {
    /// The run as the harness keeps it.
    pub fn into_run(self) -> (Run, Cpu) {
        let mut latencies_us = self.latencies_us;
        latencies_us.sort_unstable();
        let mut lags_us = self.lags_us;
        lags_us.sort_unstable();
        (
            Run {
                ok: self.ok,
                failed: self.failed,
                seconds: self.seconds,
                latencies_us,
                lags_us,
                schedule: self.schedule,
                ..Run::default()
            },
            Cpu {
                total: Duration::from_micros(self.cpu_us),
                kernel: Duration::from_micros(self.kernel_cpu_us),
            },
        )
    }
}
