//! The memory pool of a run: one limit, split between Parquet writers and everything else.
//!
//! DataFusion's Parquet writer cannot spill; in one shared pool a large aggregation that fills
//! its spillable share leaves the writer downstream of it nothing, and the run fails. So a
//! quarter of the limit is set aside for writers (their buffers are bounded by the row-group
//! size) and the rest is a fair spill pool for joins, aggregations and sorts, which spill to
//! disk when they reach their share. Together they never exceed the configured limit.
//!
//! The drill-down table's writer ([`crate::partitioned`]) runs at the same time as DataFusion's
//! writers of the aggregate tables. It ends row groups early when its own eighth of the limit
//! is used up, which DataFusion's cannot, so it gets that eighth apart from their quarter and
//! never starves them; the operators keep the remaining five eighths.

use datafusion::common::Result;
use datafusion::execution::memory_pool::{
    FairSpillPool, GreedyMemoryPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};

/// Memory consumers of DataFusion's Parquet writer are named `ParquetSink…`.
const WRITER_PREFIX: &str = "ParquetSink";
/// Memory consumers of the drill-down table's writer are named `SnapshotWriter…`.
pub const SNAPSHOT_WRITER_PREFIX: &str = "SnapshotWriter";

/// A pool of `limit` bytes: a quarter for DataFusion's Parquet writers, an eighth for the
/// drill-down table's writer, the rest fair and spillable.
#[derive(Debug)]
pub struct RunPool {
    writers: GreedyMemoryPool,
    snapshot_writer: GreedyMemoryPool,
    operators: FairSpillPool,
    limit: usize,
}

impl RunPool {
    /// Splits `limit` bytes between writers and operators.
    pub fn new(limit: usize) -> Self {
        let writers = limit / 4;
        let snapshot_writer = limit / 8;
        Self {
            writers: GreedyMemoryPool::new(writers),
            snapshot_writer: GreedyMemoryPool::new(snapshot_writer),
            operators: FairSpillPool::new(limit - writers - snapshot_writer),
            limit,
        }
    }

    fn pool_of(&self, consumer: &MemoryConsumer) -> &dyn MemoryPool {
        let name = consumer.name();
        if name.starts_with(WRITER_PREFIX) {
            &self.writers
        } else if name.starts_with(SNAPSHOT_WRITER_PREFIX) {
            &self.snapshot_writer
        } else {
            &self.operators
        }
    }
}

impl std::fmt::Display for RunPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stockflight-run(writers: {}, drill-down writer: {}, operators: {})",
            self.writers, self.snapshot_writer, self.operators
        )
    }
}

impl MemoryPool for RunPool {
    fn name(&self) -> &str {
        "stockflight-run"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.pool_of(consumer).register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.pool_of(consumer).unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.pool_of(reservation.consumer()).grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.pool_of(reservation.consumer()).shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        self.pool_of(reservation.consumer()).try_grow(reservation, additional)
    }

    fn reserved(&self) -> usize {
        self.writers.reserved() + self.snapshot_writer.reserved() + self.operators.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn writers_keep_their_share_when_operators_fill_theirs() {
        let pool: Arc<dyn MemoryPool> = Arc::new(RunPool::new(8000));
        let aggregate = MemoryConsumer::new("GroupedHashAggregateStream[0]")
            .with_can_spill(true)
            .register(&pool);
        let writer = MemoryConsumer::new("ParquetSink(ArrowColumnWriter)").register(&pool);
        let snapshot = MemoryConsumer::new(format!("{SNAPSHOT_WRITER_PREFIX}(region=east)")).register(&pool);
        // The aggregation takes everything it may and is refused beyond (then it spills).
        aggregate.try_grow(5000).unwrap();
        assert!(aggregate.try_grow(1).is_err());
        // The drill-down writer fills its eighth and is refused beyond (then it ends a row group).
        snapshot.try_grow(1000).unwrap();
        assert!(snapshot.try_grow(1).is_err());
        // DataFusion's writer still gets its quarter, and no more.
        writer.try_grow(2000).unwrap();
        assert!(writer.try_grow(1).is_err());
        assert_eq!(pool.reserved(), 8000);
    }
}
