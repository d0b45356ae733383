//! Load-testing tools for pushfleet. `simulator` speaks the providers' protocols on loopback and
//! records every message it accepts, so tests and demos can assert exactly what arrived.

pub mod api_key;
pub mod audience_bench;
pub mod bench_support;
pub mod demo;
pub mod loadgen;
pub mod report_bench;
pub mod simulator;
