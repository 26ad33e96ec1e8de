//! The `igny8` binary: everything is in [`igny8_gateway::cli`].

fn main() -> std::process::ExitCode {
    igny8_gateway::cli::main()
}
