//! perfledger: the harness (suites, runner, statistics, run files, reports).

pub mod ceiling;
pub mod cli;
pub mod compare;
pub mod criterion;
pub mod env;
pub mod eta;
pub mod export;
pub mod input;
pub mod limits;
pub mod normalize;
pub mod report;
pub mod runfile;
pub mod runner;
pub mod specs;
pub mod stats;
pub mod workload;
