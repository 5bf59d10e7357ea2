//! Three RabbitMQ nodes of the test's own, clustered, on ports of their own: never the
//! shared broker on 5672. Each node is a `rabbitmq-server` started with its own node
//! name, ports, data and log directories, an empty plugin list and an Erlang cookie
//! under a private home; all are killed when the [`Cluster`] is dropped, a failing test
//! included.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// RabbitMQ's scripts: Debian's real ones (the ones on the PATH switch to the
/// `rabbitmq` user, who could not write the test's directories), else the PATH's.
fn script(name: &str) -> PathBuf {
    let debian = Path::new("/usr/lib/rabbitmq/bin").join(name);
    if debian.exists() {
        return debian;
    }
    PathBuf::from(name)
}

/// One node.
#[derive(Debug)]
pub struct Node {
    /// `name@localhost`.
    pub name: String,
    /// Its AMQP port.
    pub port: u16,
    dir: PathBuf,
}

impl Node {
    /// The URL the relay is given (guest may log in from the loopback interface).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// The process id the node wrote, once started.
    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Kills the node at once (SIGKILL): no goodbye to the relay or the other nodes.
    pub fn kill(&self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// Three clustered nodes, killed on drop.
#[derive(Debug)]
pub struct Cluster {
    home: PathBuf,
    /// The nodes; the first is the one the others joined.
    pub nodes: Vec<Node>,
}

/// A port free now on 127.0.0.1.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Cluster {
    /// Starts three nodes and clusters them; panics, saying what failed, if RabbitMQ
    /// is not installed or a node does not come up within 90 s.
    pub fn start() -> Self {
        let tag = format!("powens_cluster_{}", std::process::id());
        let home = std::env::temp_dir().join(&tag);
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).unwrap();
        let cookie = home.join(".erlang.cookie");
        std::fs::write(&cookie, format!("{tag}_COOKIE").to_ascii_uppercase()).unwrap();
        std::fs::set_permissions(&cookie, std::os::unix::fs::PermissionsExt::from_mode(0o400))
            .unwrap();
        let mut cluster = Self {
            home: home.clone(),
            nodes: Vec::new(),
        };
        for i in 1..=3 {
            let dir = home.join(format!("n{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let node = Node {
                name: format!("{tag}_{i}@localhost"),
                port: free_port(),
                dir,
            };
            node.write_configuration(free_port());
            let started = Command::new(script("rabbitmq-server"))
                .arg("-detached")
                .env("HOME", &home)
                .env("RABBITMQ_CONF_ENV_FILE", node.dir.join("env.conf"))
                .status()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot run rabbitmq-server ({e}): the cluster test needs RabbitMQ \
                         installed (apt-get install rabbitmq-server)"
                    )
                });
            assert!(started.success(), "rabbitmq-server -detached failed");
            cluster.nodes.push(node);
        }
        for node in &cluster.nodes {
            cluster.await_startup(node);
        }
        let first = cluster.nodes[0].name.clone();
        for node in &cluster.nodes[1..] {
            cluster.ctl(node, &["stop_app"]);
            cluster.ctl(node, &["join_cluster", &first]);
            cluster.ctl(node, &["start_app"]);
        }
        let status = cluster.ctl(
            &cluster.nodes[0],
            &["cluster_status", "--formatter", "json"],
        );
        let status = String::from_utf8_lossy(&status.stdout).into_owned();
        for node in &cluster.nodes {
            assert!(
                status.contains(&node.name),
                "{} is not in {status}",
                node.name
            );
        }
        cluster
    }

    /// `rabbitmqctl -n <node> args`, which must succeed.
    pub fn ctl(&self, node: &Node, args: &[&str]) -> Output {
        let output = self.try_ctl(node, args);
        assert!(
            output.status.success(),
            "rabbitmqctl {args:?} on {}: {}",
            node.name,
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn try_ctl(&self, node: &Node, args: &[&str]) -> Output {
        Command::new(script("rabbitmqctl"))
            .args(["-q", "-n", &node.name])
            .args(args)
            .env("HOME", &self.home)
            .output()
            .expect("rabbitmqctl runs")
    }

    /// Waits until `node` has booted (it is not known to `epmd` for its first moments,
    /// which `await_startup` does not wait for).
    fn await_startup(&self, node: &Node) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let output = self.try_ctl(node, &["await_startup", "--timeout", "30"]);
            if output.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not start within 90 s: {}; its logs are in {}",
                node.name,
                String::from_utf8_lossy(&output.stderr),
                node.dir.join("log").display()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// A directory of the test's, removed with the nodes' (also when the test fails).
    pub fn dir(&self) -> &Path {
        &self.home
    }

    /// The node listening on `port`.
    pub fn node_on(&self, port: u16) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no node listens on {port}"))
    }
}

impl Node {
    /// Its environment file (ports, directories, cookie home) and configuration.
    fn write_configuration(&self, dist_port: u16) {
        let dir = self.dir.display();
        let env = format!(
            "NODENAME={name}\nNODE_PORT={port}\nDIST_PORT={dist_port}\n\
             MNESIA_BASE={dir}/mnesia\nLOG_BASE={dir}/log\nPID_FILE={dir}/pid\n\
             ENABLED_PLUGINS_FILE={dir}/enabled_plugins\nCONFIG_FILE={dir}/rabbitmq\n\
             ERL_EPMD_ADDRESS=127.0.0.1\n\
             export ERL_FLAGS=\"-kernel inet_dist_use_interface {{127,0,0,1}}\"\n",
            name = self.name,
            port = self.port,
        );
        std::fs::write(self.dir.join("env.conf"), env).unwrap();
        std::fs::write(self.dir.join("enabled_plugins"), "[].\n").unwrap();
        std::fs::write(
            self.dir.join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{}\n", self.port),
        )
        .unwrap();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            node.kill();
        }
        // Wait for the processes to go before removing their directories.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline
            && self.nodes.iter().any(|n| {
                n.pid()
                    .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
            })
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::fs::remove_dir_all(&self.home);
    }
}
