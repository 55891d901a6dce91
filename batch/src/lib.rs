//! `stockflight-batch` as a library: the binary and the benchmark share it.
//!
//! A run scans the availability table by token ranges ([`scan`]), joins and aggregates it with
//! DataFusion ([`tables`], [`engine`], [`reference`]), writes Parquet ([`write`]) and publishes
//! the snapshot atomically ([`publish`]); [`run`] ties these together and [`schedule`] decides
//! when runs happen.

pub mod engine;
pub mod error;
pub mod memory;
pub mod progress;
pub mod publish;
pub mod reference;
pub mod run;
pub mod scan;
pub mod schedule;
pub mod settings;
pub mod tables;
pub mod write;
