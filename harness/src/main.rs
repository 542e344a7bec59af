//! The `perfledger` binary.

use std::process::ExitCode;

fn main() -> ExitCode {
    // First thing: Ctrl-C stops at the next iteration and writes a partial run.
    perfledger::cli::install_interrupt_handler();
    perfledger::cli::main()
}
