//! One writer per directory: `journal.lock`, locked (`flock`) for the writer's life,
//! naming the process that holds it so that a second one can say who is in the way.
//!
//! The lock belongs to the open file, not to the process: a second open in the same
//! process is refused too, and the kernel releases it when the holder exits, however it
//! exits, so a stale file never blocks a restart. The file itself stays (removing it
//! while another process opens it would let two writers lock two different files).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The longest holder description read back: the file is only ours by convention.
const MAX_HOLDER_BYTES: u64 = 1024;

/// The longest field kept from it.
const MAX_FIELD_CHARS: usize = 100;

/// Why the lock was not taken.
#[derive(Debug)]
pub(crate) enum LockError {
    /// Another open file holds it; its holder, as the file says.
    Held(Holder),
    /// The file cannot be created or locked.
    Io(std::io::Error),
}

/// The lock on a journal's directory; released when dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    /// Locked while this lives.
    _file: File,
}

impl DirLock {
    /// Locks `path` (created if needed, mode 0600) and writes this process into it.
    ///
    /// # Errors
    /// [`LockError::Held`] when another open file holds it, naming its holder.
    pub(crate) fn acquire(path: &Path) -> Result<Self, LockError> {
        let error = LockError::Io;
        // Not truncated on open: until we hold the lock, its content is the holder's.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(LockError::Held(Holder::read(&mut file))),
            Err(TryLockError::Error(e)) => return Err(error(e)),
        }
        let text = Holder::this_process().to_text();
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(text.as_bytes()))
            .map_err(error)?;
        Ok(Self { _file: file })
    }
}

/// The process that holds a journal, as its lock file says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Holder {
    /// Its process id.
    pub(crate) pid: Option<u32>,
    /// Its program and subcommand (never further arguments: they may hold secrets).
    pub(crate) command: Option<String>,
    /// The host it runs on (a `data_dir` on a shared file system).
    pub(crate) host: Option<String>,
}

impl Holder {
    /// This process.
    pub(crate) fn this_process() -> Self {
        Self {
            pid: Some(std::process::id()),
            command: Some(command()),
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|name| name.trim().to_owned())
                .filter(|name| !name.is_empty()),
        }
    }

    /// The lock file's content.
    fn to_text(&self) -> String {
        let mut text = String::new();
        if let Some(pid) = self.pid {
            text.push_str(&format!("pid {pid}\n"));
        }
        for (key, value) in [("command", &self.command), ("host", &self.host)] {
            if let Some(value) = value {
                text.push_str(&format!("{key} {value}\n"));
            }
        }
        text
    }

    /// What a lock file says; whatever it cannot read stays unknown (the holder may
    /// not have written it yet).
    fn read(file: &mut File) -> Self {
        let mut text = String::new();
        // Unreadable: an unknown holder, still a refusal.
        let _ = file.rewind();
        let _ = file.take(MAX_HOLDER_BYTES).read_to_string(&mut text);
        Self::parse(&text)
    }

    fn parse(text: &str) -> Self {
        let mut holder = Self::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(' ') else {
                continue;
            };
            let value: String = value
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_FIELD_CHARS)
                .collect();
            match key {
                "pid" => holder.pid = value.parse().ok(),
                "command" => holder.command = Some(value),
                "host" => holder.host = Some(value),
                _ => {}
            }
        }
        holder
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "process {pid}")?,
            None => f.write_str("another process")?,
        }
        match (&self.command, &self.host) {
            (Some(command), Some(host)) => write!(f, " ({command}, host {host})"),
            (Some(command), None) => write!(f, " ({command})"),
            (None, Some(host)) => write!(f, " (host {host})"),
            (None, None) => Ok(()),
        }
    }
}

/// This program's name and subcommand, such as `powens-relay serve`.
fn command() -> String {
    let mut args = std::env::args_os();
    let program = args
        .next()
        .as_deref()
        .and_then(|p| Path::new(p).file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "unknown program".to_owned());
    let is_subcommand = |arg: &str| {
        !arg.is_empty()
            && arg.len() <= 32
            && arg.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !arg.starts_with('-')
    };
    match args.next().and_then(|arg| arg.into_string().ok()) {
        Some(sub) if is_subcommand(&sub) => format!("{program} {sub}"),
        _ => program,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_reads_back_what_it_wrote() {
        let holder = Holder {
            pid: Some(1234),
            command: Some("powens-relay serve".to_owned()),
            host: Some("relay-1".to_owned()),
        };
        assert_eq!(Holder::parse(&holder.to_text()), holder);
        assert_eq!(
            holder.to_string(),
            "process 1234 (powens-relay serve, host relay-1)"
        );
    }

    #[test]
    fn an_empty_or_foreign_lock_file_is_an_unknown_holder() {
        assert_eq!(Holder::parse("").to_string(), "another process");
        let odd = Holder::parse("pid x\ncommand a\u{1b}[31mb\n");
        assert_eq!(odd.pid, None);
        assert_eq!(odd.command.as_deref(), Some("a[31mb"));
    }
}
