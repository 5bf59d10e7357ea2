//! Each subcommand's configuration flags: `--help` shows those it reads, and a flag it
//! does not read is refused, naming the one that does, never accepted and ignored.

use std::process::Command;

fn relay(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_powens-relay"))
        .args(args)
        .env("POWENS_RELAY_DATA_DIR", crate::test_data_dir())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The flags a `--help` lists.
fn flags_of(help: &str) -> Vec<String> {
    help.lines()
        .filter_map(|line| line.trim_start().strip_prefix("--"))
        .filter_map(|rest| rest.split([' ', '=']).next())
        .map(|flag| format!("--{flag}"))
        .collect()
}

#[test]
fn dispatch_listen_is_refused_naming_the_dispatchers_address() {
    let (code, _, stderr) = relay(&["dispatch", "--listen", "127.0.0.1:9000"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--listen is not read by powens-relay dispatch")
            && stderr.contains("--dispatcher-listen"),
        "{stderr}"
    );
    let (code, _, stderr) = relay(&["serve", "--dispatcher-listen", "127.0.0.1:9000"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("on its own --listen address"), "{stderr}");
}

#[test]
fn a_flag_of_another_subcommand_is_refused_naming_its_owner() {
    for (args, owner) in [
        (&["dispatch", "--body-limit-bytes", "10"][..], "serve"),
        (
            &["dispatch", "--domain", "a.biapi.pro=forward"][..],
            "serve",
        ),
        (
            &[
                "callback",
                "show",
                "--state",
                "s",
                "--amqp-url",
                "amqp://h/%2f",
            ][..],
            "serve",
        ),
        (
            &[
                "callback",
                "create",
                "--state",
                "s",
                "--expires-in",
                "60",
                "--dispatcher-listen",
                "127.0.0.1:1",
            ][..],
            "dispatch",
        ),
    ] {
        let (code, _, stderr) = relay(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("is not read by powens-relay"),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains(owner), "{args:?}: {stderr}");
    }
}

#[test]
fn each_help_shows_only_the_flags_its_subcommand_reads() {
    let (_, help, _) = relay(&["dispatch", "--help"]);
    let dispatch = flags_of(&help);
    for absent in [
        "--listen",
        "--body-limit-bytes",
        "--domain",
        "--unroutable",
        "--max-in-flight",
    ] {
        assert!(
            !dispatch.iter().any(|f| f == absent),
            "dispatch shows {absent}: {dispatch:?}"
        );
    }
    for present in [
        "--dispatcher-listen",
        "--amqp-url",
        "--dispatcher-password",
        "--config",
    ] {
        assert!(
            dispatch.iter().any(|f| f == present),
            "dispatch hides {present}: {dispatch:?}"
        );
    }
    let (_, help, _) = relay(&["serve", "--help"]);
    let serve = flags_of(&help);
    assert!(serve.iter().any(|f| f == "--listen") && serve.iter().any(|f| f == "--domain"));
    assert!(
        !serve.iter().any(|f| f == "--dispatcher-listen"),
        "{serve:?}"
    );
    let (_, help, _) = relay(&["callback", "create", "--help"]);
    let store = flags_of(&help);
    assert!(
        store.iter().any(|f| f == "--callback-store") && store.iter().any(|f| f == "--data-dir")
    );
    assert!(
        !store.iter().any(|f| f == "--amqp-url" || f == "--listen"),
        "{store:?}"
    );
}

#[test]
fn another_subcommands_variable_is_left_alone() {
    // One environment often serves serve and dispatch: POWENS_RELAY_LISTEN is serve's,
    // and dispatch goes on to its own checks (here: no broker) without a word on it.
    let output = Command::new(env!("CARGO_BIN_EXE_powens-relay"))
        .arg("dispatch")
        .env("POWENS_RELAY_DATA_DIR", crate::test_data_dir())
        .env("POWENS_RELAY_LISTEN", "127.0.0.1:1")
        // Read with the configuration, before the broker is looked for.
        .env("POWENS_RELAY_DISPATCHER_PASSWORD", "pw")
        .env_remove("POWENS_RELAY_AMQP_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("needs amqp_url"), "{stderr}");
    assert!(!stderr.contains("--listen"), "{stderr}");
}
