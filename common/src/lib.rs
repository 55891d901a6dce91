//! Runtime plumbing shared by every Stockflight binary.
//!
//! Nothing here knows about availability data: see `stockflight-proto` for the contracts.

pub mod config;
#[cfg(feature = "cql")]
pub mod cql;
pub mod exit;
pub mod http;
pub mod sections;
pub mod shutdown;
pub mod storage;
pub mod telemetry;
