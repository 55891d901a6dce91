//! Tables held in memory while their snapshot is served.
//!
//! A snapshot does not change for hours and the aggregate and dimension tables are small, so
//! decoding their Parquet once at load and answering every query from Arrow memory beats reading
//! the files per query. Tables are loaded smallest first until `catalog.memory_cache_mb` is used
//! up; the rest stay on Parquet. The budget is per snapshot: during a swap the old snapshot's
//! tables stay in memory until its last query ends.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;

/// What loading one table into memory came to.
pub enum Loaded {
    /// The table, in memory, and the bytes it takes.
    Table(Arc<MemTable>, usize),
    /// More than the budget left: the table stays on Parquet.
    TooBig,
}

/// Reads all of `provider` into memory, unless it takes more than `budget` bytes of Arrow
/// memory. The batches are dealt round-robin over the context's `target_partitions`, so every
/// core scans a share of the table (a scan of a few large files can come back in fewer
/// partitions than there are cores).
pub async fn load(
    ctx: &SessionContext,
    provider: Arc<dyn TableProvider>,
    budget: usize,
) -> datafusion::error::Result<Loaded> {
    let schema = provider.schema();
    let df = ctx.read_table(provider)?;
    let partitions = ctx.state().config().target_partitions().max(1);
    let mut stream = df.execute_stream().await?;
    let mut dealt: Vec<Vec<_>> = vec![Vec::new(); partitions];
    let mut used = 0usize;
    let mut next = 0;
    while let Some(batch) = stream.try_next().await? {
        used += batch.get_array_memory_size();
        if used > budget {
            return Ok(Loaded::TooBig);
        }
        if batch.num_rows() > 0 {
            dealt[next % partitions].push(batch);
            next += 1;
        }
    }
    Ok(Loaded::Table(Arc::new(MemTable::try_new(schema, dealt)?), used))
}
