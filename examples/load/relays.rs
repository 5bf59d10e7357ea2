//! The relays under test: one per configuration of the invocation, in this process or
//! as processes of their own, each with a `data_dir` of its own.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Child;

use powens_webhooks::relay::{Overrides, Relay, RelayConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::settings::Variant;
use crate::{Args, DOMAIN, process};

/// A running relay of one configuration.
pub struct RelayUnderTest {
    /// Its name in the report.
    pub name: String,
    pub addr: SocketAddr,
    running: Running,
}

enum Running {
    Process(Option<Child>),
    InProcess(Option<(oneshot::Sender<()>, JoinHandle<()>)>),
}

impl RelayUnderTest {
    /// Starts `variant`'s relay on the run's exchanges, its data under `data_dir`.
    pub async fn start(
        args: &Args,
        prefix: &str,
        secret_path: &Path,
        data_dir: &Path,
        variant: &Variant,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let name = variant.name.clone();
        if args.separate_process {
            let (child, addr) =
                process::spawn_relay(args, prefix, secret_path, data_dir, &variant.settings)?;
            return Ok(Self {
                name,
                addr,
                running: Running::Process(Some(child)),
            });
        }
        let overrides = Overrides::new()
            .with("listen", "127.0.0.1:0")
            .with("amqp_url", args.amqp_url.as_str())
            .with("exchange_prefix", prefix)
            .with("data_dir", data_dir.display().to_string())
            .with_domain(format!("{DOMAIN}=file:{}", secret_path.display()));
        let overrides = variant
            .settings
            .iter()
            .fold(overrides, |overrides, setting| setting.apply(overrides));
        let config = RelayConfig::load(&overrides)?;
        let relay = Relay::start(&config).await?;
        let addr = relay.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(relay.run(async {
            let _ = stopped.await;
        }));
        Ok(Self {
            name,
            addr,
            running: Running::InProcess(Some((stop, task))),
        })
    }

    /// The relay process's pid, as `/proc` names it.
    pub fn pid(&self) -> Option<String> {
        match &self.running {
            Running::Process(Some(child)) => Some(child.id().to_string()),
            _ => None,
        }
    }

    /// The relay process's peak RSS so far.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        match &self.running {
            Running::Process(Some(child)) => Some(process::peak_rss_kib(child.id())),
            _ => None,
        }
    }

    /// Stops the relay as an operator would (SIGTERM for a process); an error if it
    /// did not exit cleanly.
    pub async fn stop(mut self) -> Result<(), Box<dyn std::error::Error>> {
        match &mut self.running {
            Running::Process(child) => {
                let Some(mut child) = child.take() else {
                    return Ok(());
                };
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
                let status = child.wait()?;
                if !status.success() {
                    return Err(format!("{}: the relay exited with {status}", self.name).into());
                }
            }
            Running::InProcess(running) => {
                if let Some((stop, task)) = running.take() {
                    let _ = stop.send(());
                    task.await?;
                }
            }
        }
        Ok(())
    }
}

impl Drop for RelayUnderTest {
    /// A relay process left running by an error is killed, not left behind.
    fn drop(&mut self) {
        if let Running::Process(Some(child)) = &mut self.running {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
