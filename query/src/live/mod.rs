//! Live tables: seconds-fresh answers beside the snapshot's, in the same catalog and schema.
//!
//! - `availability_live` ([`live_table`]): Cassandra's availability table read at query time,
//!   in the snapshot's columns. Point reads: filters on `item_id` (and `node_id`) become CQL;
//!   a query that would scan the whole table is refused ([`guard`]).
//! - `availability_current` and `availability_by_{node,item,region_category}_current`
//!   ([`current`]): the served snapshot with the changes since its cut-off applied, last write
//!   wins ([`merge`]), from the change log ingest writes ([`follower`]). An aggregate over
//!   `availability_current` is answered from the snapshot's and the changes' ([`aggregate`],
//!   [`changes`]).
//!
//! Every snapshot gets its own live tables ([`Live::attach`]), joined with its reference data
//! ([`reference`], [`rows`]) and merged into its rows ([`snapshot_rows`]). The live tables are
//! never served from the plan or result caches ([`reads_live`]), and answer UNAVAILABLE while
//! Cassandra is unreachable, whatever happens to the snapshot tables.

pub mod aggregate;
pub mod changes;
pub mod connection;
pub mod current;
pub mod exec;
pub mod follower;
pub mod guard;
pub mod live_table;
pub mod merge;
pub mod reference;
pub mod rows;
pub mod snapshot_rows;

use std::sync::Arc;
use std::time::Duration;

use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use stockflight_common::sections::Consistency;
use stockflight_proto::layout::SnapshotManifest;

use aggregate::CurrentAggregates;
use changes::{ChangeTable, Side};
use connection::Connection;
use current::{Current, CurrentTable, DeltaTable, LiveView};
use follower::{CurrentState, FollowOptions, Follower};
use live_table::LiveTable;
use reference::Reference;
use rows::Joiner;
use snapshot_rows::{SNAPSHOT_TABLE, SnapshotRows};

pub use current::CURRENT_TABLE;
pub use live_table::LIVE_TABLE;

/// How long attaching a snapshot waits for its changes to load before serving it anyway (its
/// current tables answer UNAVAILABLE until they are loaded).
const LOAD_WAIT: Duration = Duration::from_secs(10);

/// The live tables' settings (`cassandra.*` and `live.*` of the server).
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Cassandra contact points.
    pub nodes: Vec<String>,
    /// Keyspace of the availability table and the change log.
    pub keyspace: String,
    /// Read consistency.
    pub consistency: Consistency,
    /// Most rows a scan of `availability_live` without a key filter may ask for (its LIMIT).
    pub max_scan_rows: u64,
    /// Time a Cassandra request may take.
    pub request_timeout: Duration,
    /// How the change log is followed.
    pub follow: FollowOptions,
}

/// The live tables of every served snapshot, and what keeps them fresh.
#[derive(Debug)]
pub struct Live {
    options: LiveOptions,
    connection: Arc<Connection>,
    follower: Arc<Follower>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Live {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Live {
    /// Starts opening the Cassandra session and following the change log (in the background:
    /// neither needs Cassandra to be up now).
    pub fn start(options: LiveOptions) -> Self {
        let connection = Arc::new(Connection::new(options.clone()));
        let follower = Arc::new(Follower::new(connection.clone(), options.follow.clone()));
        let tasks = vec![connection.spawn_open(), follower.spawn_poll()];
        Self {
            options,
            connection,
            follower,
            tasks,
        }
    }

    /// Registers the live tables in a snapshot's `ctx`, if the snapshot has what they need
    /// (the drill-down table with the batch's columns, `items`, `nodes`); a snapshot without is
    /// served without them, with a warning.
    pub async fn attach(&self, ctx: &SessionContext, manifest: &SnapshotManifest) {
        if let Err(reason) = self.try_attach(ctx, manifest).await {
            tracing::warn!(run_id = %manifest.run_id, %reason, "live tables not served with this snapshot");
        }
    }

    async fn try_attach(&self, ctx: &SessionContext, manifest: &SnapshotManifest) -> Result<(), String> {
        let snapshot = ctx
            .table_provider(SNAPSHOT_TABLE)
            .await
            .map_err(|e| format!("{SNAPSHOT_TABLE}: {e}"))?;
        let reference = Arc::new(Reference::load(ctx).await?);
        let joiner = Joiner::new(snapshot.schema(), reference.clone());
        let rows = SnapshotRows::load(ctx).await?;
        let live = LiveTable::new(self.connection.clone(), joiner.clone(), self.options.max_scan_rows);
        ctx.register_table(LIVE_TABLE, Arc::new(live))
            .map_err(|e| e.to_string())?;

        let started = chrono::DateTime::parse_from_rfc3339(&manifest.started_at)
            .map_err(|e| format!("started_at `{}`: {e}", manifest.started_at))?;
        let cutoff = self.follower.cutoff_us(started.timestamp_micros());
        let indexed = rows.len();
        let state = Arc::new(CurrentState::new(manifest.run_id.clone(), cutoff, rows, reference));
        self.follower.attach(&state, LOAD_WAIT).await;
        let current = Arc::new(Current::new(self.follower.clone(), state));
        let table: Arc<dyn TableProvider> =
            Arc::new(CurrentTable::new(current.clone(), snapshot.clone(), joiner.clone()));
        ctx.register_table(CURRENT_TABLE, table.clone())
            .map_err(|e| e.to_string())?;
        let changes =
            |side| -> Arc<dyn TableProvider> { Arc::new(ChangeTable::new(current.clone(), joiner.clone(), side)) };
        ctx.add_optimizer_rule(Arc::new(CurrentAggregates::new(
            table,
            snapshot,
            changes(Side::Changed),
            changes(Side::Replaced),
            joiner,
        )));
        let views = current::register_views(ctx, &current)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(run_id = %manifest.run_id, rows = indexed, ?views, "live tables attached");
        Ok(())
    }
}

/// Whether `provider` is one of the live tables (or what they read): its answers change without
/// a new snapshot.
pub fn is_live(provider: &dyn TableProvider) -> bool {
    provider.is::<LiveTable>()
        || provider.is::<CurrentTable>()
        || provider.is::<DeltaTable>()
        || provider.is::<ChangeTable>()
        || provider.is::<LiveView>()
}

/// Whether `plan` reads a live table anywhere (subqueries included): such a plan and its
/// results must not be kept for a later run.
pub fn reads_live(plan: &LogicalPlan) -> bool {
    let mut live = false;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && source_as_provider(&scan.source).is_ok_and(|p| is_live(p.as_ref()))
        {
            live = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    live
}
