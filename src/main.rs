//! `powens-relay`: the command line of powens-webhooks. See `powens-relay --help`.
//! The whole command line lives in the library (`powens_webhooks::relay::cli`).

fn main() -> std::process::ExitCode {
    powens_webhooks::relay::cli::main()
}
