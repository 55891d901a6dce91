//! Stockflight's data layer: the catalog of served tables (the published snapshot, swapped without
//! a restart), the caches built on it, query rewriting and execution within limits.
//!
//! Beside each snapshot's tables, the live tables ([`live`]) answer from Cassandra and the
//! change log as of now.
//!
//! Front ends (the Flight SQL service) talk to it through one small trait, [`DataLayer`]: plan a
//! statement, run one, cancel one, list the tables. They decode their protocol's requests into
//! these calls and encode the answers; nothing here knows about gRPC. Every call carries its
//! [`Caller`], so what the data layer logs and counts is attributed to the user who asked.

pub mod budget;
pub mod catalog;
pub mod engine;
pub mod error;
mod execute;
pub mod live;
pub mod navigate;
pub mod plan;
pub mod results;
pub mod tables;

use std::pin::Pin;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::common::ParamValues;
use futures::Stream;

pub use engine::{Engine, EngineOptions, Limits};
pub use error::{Error, Kind};
pub use tables::{TableInfo, TableKind};

/// The catalog name clients see.
pub const CATALOG: &str = "stockflight";
/// The schema name clients see.
pub const SCHEMA: &str = "public";

/// Who is asking: the authenticated user (or `anonymous` when authentication is off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user name.
    pub user: String,
}

impl Caller {
    /// A caller named `user`.
    pub fn new(user: impl Into<String>) -> Self {
        Self { user: user.into() }
    }
}

/// A statement and its bound parameters, if any.
#[derive(Debug, Clone)]
pub struct Statement {
    /// The SQL text.
    pub sql: String,
    /// Values of `$1`, `$2`, … (or `?` in order); `None` when nothing is bound.
    pub params: Option<ParamValues>,
}

/// What planning a statement tells a client before it runs it.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The result's schema, in the types clients read.
    pub schema: SchemaRef,
    /// The placeholders' schema (`$1`, `$2`, …; Null where the type is unknown).
    pub parameters: Schema,
    /// The snapshot it was planned on: pass it to [`DataLayer::run`] so the statement runs on
    /// that snapshot, whichever replica runs it.
    pub snapshot: String,
}

/// A statement to run.
#[derive(Debug, Clone)]
pub struct Run {
    /// Id for logs, metrics and [`DataLayer::cancel`].
    pub query_id: String,
    /// What to run.
    pub statement: Statement,
    /// The snapshot it was planned on ([`Prepared::snapshot`]); `None`: the current one.
    pub snapshot: Option<String>,
}

/// A stream of result batches.
pub type BatchStream = Pin<Box<dyn Stream<Item = Result<RecordBatch, Error>> + Send>>;

/// A running query: its schema and its batches. Dropping the stream ends the query.
pub struct Answer {
    /// The result's schema (the types clients read).
    pub schema: SchemaRef,
    /// The batches, as they are computed.
    pub batches: BatchStream,
}

/// What a front end asks of the data layer.
#[async_trait]
pub trait DataLayer: Send + Sync + std::fmt::Debug {
    /// Plans `statement` on the current snapshot without running it.
    async fn prepare(&self, caller: &Caller, statement: Statement) -> Result<Prepared, Error>;
    /// Starts a statement within the limits; the answer streams while it runs.
    async fn run(&self, caller: &Caller, run: Run) -> Result<Answer, Error>;
    /// Stops the query `query_id` (running, or not started yet); false when it already ended.
    fn cancel(&self, caller: &Caller, query_id: &str) -> bool;
    /// The tables `caller` may query, sorted by schema and name.
    async fn tables(&self, caller: &Caller) -> Result<Vec<TableInfo>, Error>;
}
