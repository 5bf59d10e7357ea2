//! `powens-relay`: the command line of powens-webhooks. See `powens-relay --help`.
//! This file parses and dispatches; each subcommand lives in `cli/`.

mod cli;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "powens-relay",
    version,
    about = "Sign, verify and relay Powens webhooks."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the BI-Signature of a webhook (base64), as Powens computes it.
    ///
    /// The secret comes from POWENS_WEBHOOK_SECRET or --secret-file, never from the
    /// command line.
    Sign(cli::sign::SignArgs),
    /// Check a BI-Signature: prints `valid` (exit 0) or `invalid: <reason>` (exit 1).
    ///
    /// The secret comes from POWENS_WEBHOOK_SECRET or --secret-file.
    Verify(cli::sign::VerifyArgs),
    /// Run the relay: receive webhooks, verify them, publish them to RabbitMQ and answer
    /// 204 once the broker confirmed. Without an AMQP URL, messages go to standard output.
    Serve(cli::serve::ServeArgs),
    /// Sign a body (date = now) and POST it to a relay, as Powens would; prints the
    /// status and the response body. Exit 0 on a 2xx, 1 otherwise.
    ///
    /// The secret comes from POWENS_WEBHOOK_SECRET or --secret-file.
    Send(cli::send::SendArgs),
    /// Bind a private queue to the webhook exchange for a domain and print each message
    /// received as one JSON line (acknowledged once printed).
    Consume(cli::consume::ConsumeArgs),
    /// Run TeaL's websocket dispatcher: clients create callbacks and register to
    /// states, CIBA requests and Powens domains on GET /websocket, and receive their
    /// messages from RabbitMQ as they come.
    ///
    /// The password (user anonymous) comes from POWENS_RELAY_DISPATCHER_PASSWORD or the
    /// file named by --dispatcher-password file:PATH, never from the command line.
    Dispatch(cli::dispatch::DispatchArgs),
    /// Create or show a callback in the callback store (the configuration of `serve`).
    #[command(subcommand)]
    Callback(cli::callback::CallbackCommand),
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = cli::no_password_in_argv(&matches).and_then(|()| match cli.command {
        Command::Sign(args) => cli::sign::sign(&args),
        Command::Verify(args) => cli::sign::verify(&args),
        Command::Serve(args) => cli::serve::serve(args),
        Command::Send(args) => cli::send::send(&args),
        Command::Consume(args) => cli::consume::consume(args),
        Command::Dispatch(args) => cli::dispatch::dispatch(args),
        Command::Callback(command) => cli::callback::callback(command),
    });
    result.unwrap_or_else(|message| {
        eprintln!("error: {message}");
        ExitCode::from(2)
    })
}
