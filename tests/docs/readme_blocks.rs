//! The README's shell blocks, pasted in order as a newcomer would, with `cargo run`
//! standing for the binaries this test run built: the quick start's webhook reaches a
//! websocket client, the relay's reaches a consumer, the dispatcher's a client.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long one terminal's blocks may take, the relay's start included.
const LIMIT: Duration = Duration::from_secs(90);

/// `cargo` for the blocks: `cargo run [-q] -- ARGS` runs the relay this test run
/// built, `cargo run [-q] --example NAME -- ARGS` that example; anything else fails.
const CARGO_SHIM: &str = r#"#!/usr/bin/env bash
[ "$1" = run ] || { echo "cargo shim: only 'cargo run' is expected, not: $*" >&2; exit 97; }
shift
example=
while [ $# -gt 0 ]; do
    case "$1" in
        -q) shift ;;
        --example) example="$2"; shift 2 ;;
        --) shift; break ;;
        *) echo "cargo shim: unexpected $1" >&2; exit 97 ;;
    esac
done
if [ -n "$example" ]; then exec "$POWENS_TEST_EXAMPLES/$example" "$@"; fi
exec "$POWENS_TEST_RELAY" "$@"
"#;

/// A terminal: bash running `script` in a process group of its own, its output (and
/// that of what it leaves in the background) in a file.
struct Terminal {
    child: Child,
    output: PathBuf,
}

impl Terminal {
    fn open(dir: &Path, name: &str, script: &str) -> Self {
        use std::os::unix::process::CommandExt;
        let output = dir.join(format!("{name}.out"));
        let file = std::fs::File::create(&output).unwrap();
        let path = format!(
            "{}:{}",
            dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let relay = PathBuf::from(env!("CARGO_BIN_EXE_powens-relay"));
        // target/debug/powens-relay: the examples are in target/debug/examples.
        let examples = relay.parent().unwrap().join("examples");
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(script)
            .current_dir(dir.join("clone"))
            .env("PATH", path)
            .env("POWENS_TEST_RELAY", &relay)
            .env("POWENS_TEST_EXAMPLES", examples)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .process_group(0);
        for (name, _) in std::env::vars() {
            if name.starts_with("POWENS_") || name == "RUST_LOG" {
                command.env_remove(name);
            }
        }
        Self {
            child: command.spawn().unwrap(),
            output,
        }
    }

    fn output(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.output) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// Waits until the output has a line for each of `wanted` (each line matching all
    /// of its parts); the output either way.
    fn wait_for(&self, wanted: &[&[&str]]) -> Result<String, String> {
        let deadline = Instant::now() + LIMIT;
        loop {
            let output = self.output();
            let found = wanted.iter().all(|parts| {
                output
                    .lines()
                    .any(|line| parts.iter().all(|part| line.contains(part)))
            });
            if found {
                return Ok(output);
            }
            if Instant::now() > deadline {
                return Err(output);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Terminal {
    /// Ctrl-c, as the README asks between its sections: the whole process group.
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        for signal in ["-INT", "-KILL"] {
            let _ = Command::new("kill").args([signal, "--", &group]).status();
            std::thread::sleep(Duration::from_millis(300));
        }
        let _ = self.child.wait();
    }
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[test]
fn the_readme_blocks_pasted_in_order_relay_a_webhook_to_a_websocket_client() {
    for port in [8080, 8081] {
        assert!(
            port_free(port),
            "the README's blocks listen on 127.0.0.1:{port}, which is taken: stop what \
             listens there"
        );
    }
    let examples = PathBuf::from(env!("CARGO_BIN_EXE_powens-relay"))
        .parent()
        .unwrap()
        .join("examples/websocket_client");
    assert!(
        examples.exists(),
        "{} is not built: run the whole `cargo test --all-features` (which builds the \
         examples), or `cargo build --all-features --example websocket_client` first",
        examples.display()
    );
    let readme = std::fs::read_to_string(crate::root().join("README.md")).unwrap();
    let sh: Vec<String> = crate::blocks(&readme, "sh")
        .into_iter()
        .filter(|block| !block.trim().starts_with("cargo test"))
        .collect();
    assert_eq!(sh.len(), 4, "the README's shell blocks changed: {sh:#?}");
    let dir = std::env::temp_dir().join(format!("powens-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("clone")).unwrap();
    let shim = dir.join("bin/cargo");
    std::fs::write(&shim, CARGO_SHIM).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();

    // The quick start: the relay in one terminal, the client and send in another.
    {
        let relay = Terminal::open(&dir, "quick-start-relay", &sh[0]);
        let client = Terminal::open(&dir, "quick-start-client", &sh[1]);
        let got = client.wait_for(&[
            &["204"],
            &[
                r#"{"type":"powens_webhook""#,
                r#""domain":"sandbox.biapi.pro""#,
            ],
        ]);
        let logs = relay.output();
        assert!(logs.contains("data directory: "), "{logs}");
        if let Err(output) = got {
            panic!("quick start: no webhook at the client:\n{output}\nrelay:\n{logs}");
        }
    }
    // The relay with RabbitMQ, then the dispatcher, pasted into one terminal.
    let terminal = Terminal::open(&dir, "relay-and-dispatcher", &format!("{}{}", sh[2], sh[3]));
    let got = terminal.wait_for(&[
        &[
            r#""event":"USER_SYNCED""#,
            r#""payload":"{\"id_webhook_data\": 1}""#,
        ],
        &[
            r#"{"type":"powens_webhook""#,
            r#""payload":"{\"id_webhook_data\": 2}""#,
        ],
    ]);
    drop(terminal);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(output) = got {
        panic!("the relay's and the dispatcher's blocks:\n{output}");
    }
}
