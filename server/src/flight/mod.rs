//! The Flight SQL front end: the gRPC service and what it answers with.

pub mod auth;
pub mod encode;
pub mod handles;
pub mod keep_alive;
pub mod metadata;
pub mod service;
pub mod session;
pub mod sql_info;
pub mod xdbc;
