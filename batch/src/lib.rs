//! `stockflight-batch` as a library: the binary and the benchmark share it.
//!
//! A run takes the run lease ([`lease`]), scans the availability table by token ranges
//! ([`scan`]), joins and aggregates it with DataFusion in one pass ([`tables`], [`engine`],
//! [`reference`], [`fanout`]), writes Parquet ([`partitioned`], [`write`]) and publishes the
//! snapshot atomically ([`publish`]); [`run`] ties these together and [`schedule`] decides
//! when runs happen. With `distributed.workers` set, [`distributed`] runs the pass on worker
//! processes instead.

pub mod distributed;
pub mod engine;
pub mod error;
pub mod fanout;
pub mod lease;
pub mod memory;
pub mod partitioned;
pub mod progress;
pub mod publish;
pub mod reference;
pub mod run;
pub mod scan;
pub mod schedule;
pub mod settings;
pub mod tables;
pub mod write;
