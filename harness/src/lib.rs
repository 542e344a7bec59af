//! perfledger: the harness (suites, runner, statistics, run files, reports).

pub mod cli;
pub mod env;
pub mod runfile;
pub mod runner;
pub mod stats;
pub mod workload;
