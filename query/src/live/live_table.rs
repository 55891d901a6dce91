//! `availability_live`: the availability table read from Cassandra at query time, in the
//! snapshot's columns.
//!
//! The read is `datafusion-table-providers`' Cassandra provider ([`CassandraTable`]): it turns the
//! filters on the key columns CQL can evaluate into the statement's `WHERE` (`item_id = …`,
//! `item_id IN (…)`, and with those `node_id =` or a `node_id` range) and a pushed-down limit into
//! its `LIMIT`; the filters it cannot push it applies itself above the read. Around it this table
//! adds the full-scan guard ([`super::guard`]), the join with the snapshot's reference data
//! ([`super::rows`]) and UNAVAILABLE for Cassandra's failures.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::TableReference;
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_table_providers_cassandra::{CassandraConnectionPool, CassandraTable, KeyColumn, PrimaryKey};
use stockflight_proto::cassandra::AVAILABILITY_TABLE;

use super::connection::Connection;
use super::exec::MapExec;
use super::guard::{self, ScanShape};
use super::rows::{Joiner, Pairs, raw_schema};
use crate::error::Error;

/// Name clients query.
pub const LIVE_TABLE: &str = "availability_live";

/// The key columns: filters on them only are handed to the Cassandra provider.
const KEY_COLUMNS: [&str; 2] = ["item_id", "node_id"];

/// `availability_live` of one snapshot (its reference data and columns).
#[derive(Debug)]
pub struct LiveTable {
    connection: Arc<Connection>,
    joiner: Joiner,
    max_scan_rows: u64,
}

impl LiveTable {
    /// The live table over `connection`, with rows built by `joiner`.
    pub fn new(connection: Arc<Connection>, joiner: Joiner, max_scan_rows: u64) -> Self {
        Self {
            connection,
            joiner,
            max_scan_rows,
        }
    }
}

/// `PRIMARY KEY ((item_id), node_id)` of `stockflight_proto::cassandra`.
fn primary_key() -> PrimaryKey {
    PrimaryKey::new(
        vec![KeyColumn::new("item_id", "text")],
        vec![KeyColumn::new("node_id", "text")],
    )
}

/// Whether `filter` reads the key columns only.
fn on_keys(filter: &Expr) -> bool {
    let columns = filter.column_refs();
    !columns.is_empty() && columns.iter().all(|c| KEY_COLUMNS.contains(&c.name.as_str()))
}

#[async_trait]
impl TableProvider for LiveTable {
    fn schema(&self) -> SchemaRef {
        self.joiner.schema().clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Filters on the key columns go to the Cassandra provider, which evaluates each exactly
    /// (in CQL or over its read); the others DataFusion applies to the joined rows.
    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if on_keys(f) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let session = self.connection.session()?;
        // Unquoted CQL names are lower case: the keyspace as ingest created it.
        let table = TableReference::partial(self.connection.keyspace().to_lowercase(), AVAILABILITY_TABLE);
        let pool = Arc::new(CassandraConnectionPool::from_session(session));
        let cassandra = CassandraTable::new(table, pool, raw_schema()).with_primary_key(primary_key());
        let refs: Vec<&Expr> = filters.iter().collect();
        // The provider pushes a filter to CQL only once the partition key is restricted.
        let partition_restricted = cassandra
            .supports_filters_pushdown(&refs)?
            .iter()
            .any(|s| matches!(s, TableProviderFilterPushDown::Exact));
        let shape = ScanShape {
            partition_restricted,
            filters: filters.len(),
            limit,
        };
        guard::check(LIVE_TABLE, shape, self.max_scan_rows)?;
        let read = cassandra.scan(state, None, filters, limit).await?;
        tracing::debug!(plan = %datafusion::physical_plan::displayable(read.as_ref()).one_line(), "live read");
        let schema = match projection {
            Some(p) => Arc::new(self.joiner.schema().project(p)?),
            None => self.joiner.schema().clone(),
        };
        let (joiner, projection) = (self.joiner.clone(), projection.cloned());
        let join = Arc::new(move |raw: arrow::array::RecordBatch| {
            let joined = joiner.join(&Pairs::from_raw(&raw)?)?;
            Ok(match &projection {
                Some(p) => joined.project(p)?,
                None => joined,
            })
        });
        Ok(Arc::new(MapExec::new(
            "availability rows joined with items and nodes",
            read,
            schema,
            join,
            unavailable,
        )))
    }
}

/// A failure of the Cassandra read, as UNAVAILABLE with the driver's reason.
fn unavailable(err: datafusion::error::DataFusionError) -> datafusion::error::DataFusionError {
    Error::LiveUnavailable(format!("reading Cassandra failed: {}", err.find_root())).into()
}
