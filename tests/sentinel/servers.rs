//! A Redis primary, its replica and three sentinels of the test's own, on ports of their
//! own (never the shared Redis on 6379), and the relay under test: every process is a
//! child of the test, killed when [`Servers`] is dropped, a failing test included.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The primary's name, as the sentinels know it.
pub const MASTER: &str = "relaytest";

/// One process of the test's.
#[derive(Debug)]
pub struct Process {
    /// What it is, for messages.
    pub name: String,
    /// Its port.
    pub port: u16,
    child: Child,
}

impl Process {
    /// Sends `signal` (`STOP`, `CONT`).
    pub fn signal(&self, signal: &str) {
        assert!(self.try_signal(signal), "kill -{signal} {}", self.name);
    }

    fn try_signal(&self, signal: &str) -> bool {
        Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Kills it at once (SIGKILL): no goodbye to anyone (a stopped one included).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The servers, killed on drop.
#[derive(Debug)]
pub struct Servers {
    dir: PathBuf,
    /// The primary at the start.
    pub primary: Process,
    /// Its replica.
    pub replica: Process,
    /// The sentinels.
    pub sentinels: Vec<Process>,
    /// Other processes to kill with the servers (the relay).
    pub others: Vec<Process>,
}

/// A port free now on 127.0.0.1.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn spawn(program: &str, args: &[&str], name: &str, port: u16) -> Process {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {program} ({e}): the Sentinel test needs redis-server and \
                 redis-sentinel (apt-get install redis-server redis-sentinel)"
            )
        });
    Process {
        name: name.to_owned(),
        port,
        child,
    }
}

/// `command` on the server at `port`, as text (a sync connection: the test's set-up).
fn query(port: u16, command: &redis::Cmd) -> redis::RedisResult<redis::Value> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let mut connection = client.get_connection_with_timeout(Duration::from_secs(1))?;
    connection.set_read_timeout(Some(Duration::from_secs(2)))?;
    command.query(&mut connection)
}

fn text(value: &redis::Value) -> String {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::VerbatimString { text, .. } => text.clone(),
        other => format!("{other:?}"),
    }
}

/// Polls `ready` until it holds; panics after `within`, naming `what`.
fn await_until(what: &str, within: Duration, mut ready: impl FnMut() -> Option<String>) {
    let deadline = Instant::now() + within;
    loop {
        let Some(why) = ready() else { return };
        assert!(
            Instant::now() < deadline,
            "{what} not ready within {within:?}: {why}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Servers {
    /// Starts the primary and its replica, waits for the replica to be in sync, then
    /// starts three sentinels (quorum 2, a node down after 1 s) and waits until each
    /// knows the replica and the two other sentinels (without which no fail-over).
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("powens_sentinel_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let node = |name: &str, port: u16, extra: &[&str]| {
            let data = dir.join(name);
            std::fs::create_dir_all(&data).unwrap();
            let port_text = port.to_string();
            let log = dir.join(format!("{name}.log"));
            let mut args = vec![
                "--port",
                &port_text,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                data.to_str().unwrap(),
                "--logfile",
                log.to_str().unwrap(),
            ];
            args.extend(extra);
            spawn("redis-server", &args, name, port)
        };
        let primary_port = free_port();
        let primary = node("primary", primary_port, &[]);
        let primary_text = primary_port.to_string();
        let replica = node(
            "replica",
            free_port(),
            &["--replicaof", "127.0.0.1", &primary_text],
        );
        let mut servers = Self {
            dir: dir.clone(),
            primary,
            replica,
            sentinels: Vec::new(),
            others: Vec::new(),
        };
        let replica_port = servers.replica.port;
        await_until("the replica", Duration::from_secs(30), || {
            let info = query(replica_port, redis::cmd("INFO").arg("replication"))
                .map(|v| text(&v))
                .map_err(|e| e.to_string());
            match info {
                Ok(info) if info.contains("master_link_status:up") => None,
                Ok(info) => Some(info),
                Err(e) => Some(e),
            }
        });
        for i in 1..=3 {
            let port = free_port();
            let name = format!("sentinel{i}");
            let config = dir.join(format!("{name}.conf"));
            std::fs::write(
                &config,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile {dir}/{name}.log\n\
                     sentinel monitor {MASTER} 127.0.0.1 {primary_port} 2\n\
                     sentinel down-after-milliseconds {MASTER} 1000\n\
                     sentinel failover-timeout {MASTER} 10000\n\
                     sentinel parallel-syncs {MASTER} 1\n",
                    dir = dir.display(),
                ),
            )
            .unwrap();
            let process = spawn("redis-sentinel", &[config.to_str().unwrap()], &name, port);
            servers.sentinels.push(process);
        }
        for sentinel in &servers.sentinels {
            let port = sentinel.port;
            await_until(&sentinel.name, Duration::from_secs(60), || {
                let master = query(port, redis::cmd("SENTINEL").arg("master").arg(MASTER));
                let fields = match master {
                    Ok(redis::Value::Array(fields)) => fields.iter().map(text).collect::<Vec<_>>(),
                    Ok(redis::Value::Map(pairs)) => {
                        pairs.iter().flat_map(|(k, v)| [text(k), text(v)]).collect()
                    }
                    Ok(other) => return Some(format!("{other:?}")),
                    Err(e) => return Some(e.to_string()),
                };
                let field = |name: &str| {
                    fields
                        .iter()
                        .position(|f| f == name)
                        .and_then(|i| fields.get(i + 1))
                        .cloned()
                        .unwrap_or_default()
                };
                let ready = field("num-slaves") == "1" && field("num-other-sentinels") == "2";
                (!ready).then(|| format!("{fields:?}"))
            });
        }
        servers
    }

    /// A directory of the test's, removed with the servers.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The sentinels' part of a `redis+sentinel://` URL: `127.0.0.1:P,…`.
    pub fn sentinel_hosts(&self) -> String {
        let hosts: Vec<_> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        hosts.join(",")
    }

    /// The primary's port as the first sentinel that answers names it.
    pub fn primary_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|s| {
            let address = query(
                s.port,
                redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(MASTER),
            )
            .ok()?;
            match address {
                redis::Value::Array(parts) => text(parts.get(1)?).parse().ok(),
                _ => None,
            }
        })
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for process in self
            .others
            .iter_mut()
            .chain(&mut self.sentinels)
            .chain([&mut self.primary, &mut self.replica])
        {
            process.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `powens-relay serve` with `env`, its standard error's lines collected; waits for
/// its "listening on" line.
pub fn serve(
    env: &[(&str, &str)],
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) -> (Process, SocketAddr) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_powens-relay"))
        .arg("serve")
        .env("POWENS_RELAY_LISTEN", "127.0.0.1:0")
        .env("POWENS_RELAY_DOMAINS", "sandbox.biapi.pro=forward")
        .env("RUST_LOG", "info")
        .env_remove("POWENS_RELAY_AMQP_URL")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        // Without a broker, callbacks are printed there.
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut early = Vec::new();
    let addr = loop {
        let mut line = String::new();
        let read = stderr.read_line(&mut line).unwrap();
        assert_ne!(read, 0, "serve exited before listening: {early:#?}");
        if let Some(rest) = line.split("listening on ").nth(1) {
            let addr = rest.split(|c: char| c == '"' || c.is_whitespace()).next();
            break addr.unwrap().parse().unwrap();
        }
        early.push(line);
    };
    logs.lock()
        .unwrap()
        .extend(early.iter().map(|l| l.trim_end().to_owned()));
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            logs.lock().unwrap().push(line);
        }
    });
    let port = match addr {
        SocketAddr::V4(a) => a.port(),
        SocketAddr::V6(a) => a.port(),
    };
    (
        Process {
            name: "relay".to_owned(),
            port,
            child,
        },
        addr,
    )
}
