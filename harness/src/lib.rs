//! perfledger: the harness (suites, runner, statistics, run files, reports).

pub mod cli;
pub mod env;
pub mod normalize;
pub mod report;
pub mod runfile;
pub mod runner;
pub mod specs;
pub mod stats;
pub mod workload;
