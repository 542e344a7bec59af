//! The `perfledger` binary.

use std::process::ExitCode;

/// Large buffers (the input and output tensors) on cache lines, as frameworks give their kernels
/// (`perfledger_kernels::alloc`).
#[global_allocator]
static ALLOC: perfledger_kernels::alloc::CacheLineAligned =
    perfledger_kernels::alloc::CacheLineAligned;

fn main() -> ExitCode {
    // Output into a pipe whose reader has gone (`perfledger run --plan | head -1`) ends the
    // process quietly, as it does any Unix filter, instead of a panic of `print!` on EPIPE.
    // Rust starts every program with SIGPIPE ignored; its default action is restored here,
    // before any thread starts. A run writes its run file before it prints the summary.
    #[cfg(unix)]
    // SAFETY: called before any other thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Before any thread starts (the environment is changed only here): no display probing by
    // Mesa's Vulkan device-select layer, whose Wayland/X11 connection attempts print errors on
    // a headless machine.
    #[cfg(feature = "gpu")]
    perfledger_kernels::gpu::context::quiet_device_select_layer();
    // First thing after: Ctrl-C stops at the next iteration and writes a partial run.
    perfledger::cli::install_interrupt_handler();
    perfledger::cli::main()
}
