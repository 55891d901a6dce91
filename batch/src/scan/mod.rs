//! The parallel token-range scan of the availability table.

pub mod cassandra;
pub mod ranges;
pub mod source;

pub use cassandra::{PageOptions, TableReader, availability_schema, connect};
pub use ranges::{TokenRange, split_count, split_ring};
pub use source::{Scan, ScanProgress};
