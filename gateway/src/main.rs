fn main() -> std::process::ExitCode {
    igny8_gateway::cli::main()
}
