use std::process::ExitCode;

fn main() -> ExitCode {
    plansync::cli::main()
}
