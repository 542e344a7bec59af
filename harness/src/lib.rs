//! perfledger: the harness (suites, runner, statistics, run files, reports).

pub mod env;
pub mod runfile;
pub mod stats;
pub mod workload;
