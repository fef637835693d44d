//! Measurements: per-operation latency histograms kept by each worker, live counters the
//! progress line reads once a second, and the final report (table or JSON).

pub mod hist;
pub mod progress;
pub mod report;

pub use hist::{Live, Recorder, Stats};
