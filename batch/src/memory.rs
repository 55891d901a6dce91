//! The memory pool of a run: one limit, split by what each kind of consumer does when it is
//! refused.
//!
//! DataFusion's Parquet writer cannot spill; in one shared pool a large aggregation that fills
//! its spillable share leaves the writer downstream of it nothing, and the run fails. So a
//! quarter of the limit is set aside for writers (their buffers are bounded by the row-group
//! size).
//!
//! The drill-down table's writer ([`crate::partitioned`]) runs at the same time as DataFusion's
//! writers of the aggregate tables. It ends row groups early when its own eighth of the limit
//! is used up, which DataFusion's cannot, so it gets that eighth apart from their quarter and
//! never starves them.
//!
//! A fair pool gives each registered spilling consumer an equal share. Partial aggregations and
//! repartitions are many (one per scan partition and aggregation) and cope with a small share:
//! they pass a batch on early, or spill it. A final aggregation that has spilled needs at least
//! two of its batches to merge its spill files; counted among all of those, its share fell
//! below that and the run failed. So the stream buffers share an eighth of their own, and the
//! remaining half is a fair pool for the operators that hold state: final aggregations, joins
//! and sorts. [`partitions_for`] keeps each of those a workable share. Together the pools never
//! exceed the configured limit.

use datafusion::common::Result;
use datafusion::execution::memory_pool::{
    FairSpillPool, GreedyMemoryPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use stockflight_common::config::ConfigError;

/// Memory consumers of DataFusion's Parquet writer are named `ParquetSink…`.
const WRITER_PREFIX: &str = "ParquetSink";
/// Memory consumers of the drill-down table's writer are named `SnapshotWriter…`.
pub const SNAPSHOT_WRITER_PREFIX: &str = "SnapshotWriter";
/// DataFusion's consumers that pass on or spill a batch when refused, not holding state.
const BUFFER_PREFIXES: [&str; 2] = ["PartialHashAggregateStream", "RepartitionExec"];

/// The least share of the operator pool a final aggregation is planned with: two batches of
/// 8192 rows of the widest aggregate state (about 0.6 MiB each) to merge spill files, and room
/// for the table it builds between spills.
pub const MIN_OPERATOR_SHARE: usize = 2 << 20;

/// How many partitions (and so concurrent final aggregations per query) a run of `limit` bytes
/// plans with, when `concurrent` aggregations run at once: as many as there are `cores`, but
/// never so many that an operator's share of the pool falls below [`MIN_OPERATOR_SHARE`].
/// `None` when the limit is too small even for one partition.
pub fn partitions_for(limit: usize, concurrent: usize, cores: usize) -> Option<usize> {
    let fit = Shares::of(limit).operators / (concurrent.max(1) * MIN_OPERATOR_SHARE);
    (fit > 0).then(|| fit.min(cores.max(1)))
}

/// The smallest limit that plans at least one partition for `concurrent` aggregations.
pub fn minimum_limit(concurrent: usize) -> usize {
    (1..)
        .map(|mib: usize| mib << 20)
        .find(|&limit| partitions_for(limit, concurrent, 1).is_some())
        .expect("some limit fits")
}

/// The configuration error of a limit that [`partitions_for`] refuses.
pub fn too_small(limit: usize, concurrent: usize) -> ConfigError {
    ConfigError::invalid(
        "memory.limit_mb",
        format!(
            "{} MiB is too small: {concurrent} aggregations each need {} MiB of the operators' half; use at least {} MiB",
            limit >> 20,
            MIN_OPERATOR_SHARE >> 20,
            minimum_limit(concurrent) >> 20
        ),
    )
}

/// How a run's limit is split between the pools of [`RunPool`].
struct Shares {
    writers: usize,
    snapshot_writer: usize,
    buffers: usize,
    operators: usize,
}

impl Shares {
    /// A quarter for DataFusion's Parquet writers, an eighth each for the drill-down table's
    /// writer and for stream buffers, the rest (half, give or take rounding) for operators.
    fn of(limit: usize) -> Self {
        let (writers, snapshot_writer, buffers) = (limit / 4, limit / 8, limit / 8);
        Self {
            writers,
            snapshot_writer,
            buffers,
            operators: limit - writers - snapshot_writer - buffers,
        }
    }
}

/// A pool of `limit` bytes: a quarter for DataFusion's Parquet writers, an eighth for the
/// drill-down table's writer, an eighth for stream buffers, the rest for stateful operators;
/// the last two fair and spillable.
#[derive(Debug)]
pub struct RunPool {
    writers: GreedyMemoryPool,
    snapshot_writer: GreedyMemoryPool,
    buffers: FairSpillPool,
    operators: FairSpillPool,
    limit: usize,
}

impl RunPool {
    /// Splits `limit` bytes between writers, buffers and operators (see [`Shares`]).
    pub fn new(limit: usize) -> Self {
        let shares = Shares::of(limit);
        Self {
            writers: GreedyMemoryPool::new(shares.writers),
            snapshot_writer: GreedyMemoryPool::new(shares.snapshot_writer),
            buffers: FairSpillPool::new(shares.buffers),
            operators: FairSpillPool::new(shares.operators),
            limit,
        }
    }

    fn pool_of(&self, consumer: &MemoryConsumer) -> &dyn MemoryPool {
        let name = consumer.name();
        if name.starts_with(WRITER_PREFIX) {
            &self.writers
        } else if name.starts_with(SNAPSHOT_WRITER_PREFIX) {
            &self.snapshot_writer
        } else if BUFFER_PREFIXES.iter().any(|p| name.starts_with(p)) {
            &self.buffers
        } else {
            &self.operators
        }
    }
}

impl std::fmt::Display for RunPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stockflight-run(writers: {}, drill-down writer: {}, buffers: {}, operators: {})",
            self.writers, self.snapshot_writer, self.buffers, self.operators
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
        self.writers.reserved() + self.snapshot_writer.reserved() + self.buffers.reserved() + self.operators.reserved()
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
        let aggregate = MemoryConsumer::new("FinalHashAggregateStream[0]")
            .with_can_spill(true)
            .register(&pool);
        let writer = MemoryConsumer::new("ParquetSink(ArrowColumnWriter)").register(&pool);
        let snapshot = MemoryConsumer::new(format!("{SNAPSHOT_WRITER_PREFIX}(region=east)")).register(&pool);
        // The aggregation takes everything it may and is refused beyond (then it spills).
        aggregate.try_grow(4000).unwrap();
        assert!(aggregate.try_grow(1).is_err());
        // Stream buffers, however many, share their own eighth.
        let buffers: Vec<_> = (0..8)
            .map(|p| {
                MemoryConsumer::new(format!("PartialHashAggregateStream[{p}]"))
                    .with_can_spill(true)
                    .register(&pool)
            })
            .collect();
        buffers[0].try_grow(125).unwrap();
        assert!(buffers[0].try_grow(1).is_err());
        let repartition = MemoryConsumer::new("RepartitionExec[0]")
            .with_can_spill(true)
            .register(&pool);
        assert!(repartition.try_grow(125).is_err(), "nine buffers share 1000 bytes");
        // The drill-down writer fills its eighth and is refused beyond (then it ends a row group).
        snapshot.try_grow(1000).unwrap();
        assert!(snapshot.try_grow(1).is_err());
        // DataFusion's writer still gets its quarter, and no more.
        writer.try_grow(2000).unwrap();
        assert!(writer.try_grow(1).is_err());
        assert_eq!(pool.reserved(), 4000 + 125 + 1000 + 2000);
    }

    #[test]
    fn partitions_keep_each_final_aggregation_a_workable_share() {
        let mib = 1 << 20;
        // 1 GiB, three aggregations: the operators' half gives 85 partitions of 2 MiB each.
        assert_eq!(partitions_for(1024 * mib, 3, 2), Some(2));
        assert_eq!(partitions_for(1024 * mib, 3, 64), Some(64));
        assert_eq!(partitions_for(1024 * mib, 3, 128), Some(85));
        // 32 MiB: 16 MiB for operators, 2 partitions of three 2 MiB shares fit.
        assert_eq!(partitions_for(32 * mib, 3, 16), Some(2));
        // Too small for even one partition.
        assert_eq!(partitions_for(8 * mib, 3, 2), None);
        assert_eq!(minimum_limit(3), 12 * mib);
        assert_eq!(partitions_for(minimum_limit(3), 3, 2), Some(1));
    }
}
