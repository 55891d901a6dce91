//! The output tables: what each one means, as SQL over the scanned and reference tables.
//!
//! The definitions live in [`stockflight_proto::tables`], so the server's tables as of now
//! (`availability_current` and the aggregates over it) follow the same ones.

pub use stockflight_proto::tables::*;
