//! One memory budget for every query of the process, on top of each query's own limit: a
//! query's memory pool takes each reservation from its own pool and from the shared one, so
//! many queries at once cannot hold more than `limits.total_memory_mb` together.

use std::sync::Arc;

use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation};

/// A query's memory pool: its own, and the process-wide budget behind it.
#[derive(Debug)]
pub struct Budgeted {
    own: Arc<dyn MemoryPool>,
    shared: Arc<dyn MemoryPool>,
    shared_mb: u64,
}

impl Budgeted {
    /// `own` bounds the query alone; `shared` (of `shared_mb` MiB) every query together.
    pub fn new(own: Arc<dyn MemoryPool>, shared: Arc<dyn MemoryPool>, shared_mb: u64) -> Self {
        Self { own, shared, shared_mb }
    }
}

impl std::fmt::Display for Budgeted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} within the server's {} MiB", self.own, self.shared_mb)
    }
}

impl MemoryPool for Budgeted {
    fn name(&self) -> &str {
        "budgeted"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.own.register(consumer);
        self.shared.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.own.unregister(consumer);
        self.shared.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.own.grow(reservation, additional);
        self.shared.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.own.shrink(reservation, shrink);
        self.shared.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        // The query's own limit first: its message names the query's largest consumers.
        self.own.try_grow(reservation, additional)?;
        if self.shared.try_grow(reservation, additional).is_err() {
            self.own.shrink(reservation, additional);
            return Err(DataFusionError::ResourcesExhausted(format!(
                "the queries running now hold the server's memory for queries (limits.total_memory_mb = {} MiB); \
                 this one needed {additional} bytes more",
                self.shared_mb
            )));
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.own.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.own.memory_limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::GreedyMemoryPool;

    #[test]
    fn queries_together_stay_within_the_shared_budget() {
        let shared: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(100));
        let query = || -> Arc<dyn MemoryPool> {
            Arc::new(Budgeted::new(Arc::new(GreedyMemoryPool::new(80)), shared.clone(), 1))
        };
        let (a, b) = (query(), query());
        let ra = MemoryConsumer::new("a").register(&a);
        let rb = MemoryConsumer::new("b").register(&b);
        ra.try_grow(60).unwrap();
        // Within b's own 80, beyond the 40 the shared 100 has left.
        let err = rb.try_grow(60).unwrap_err().to_string();
        assert!(err.contains("limits.total_memory_mb"), "{err}");
        assert_eq!(
            (b.reserved(), shared.reserved()),
            (0, 60),
            "a refused grow leaves nothing held"
        );
        // Beyond a's own 80: the query's own limit speaks.
        assert!(!ra.try_grow(30).unwrap_err().to_string().contains("total_memory_mb"));
        rb.try_grow(40).unwrap();
        assert_eq!(shared.reserved(), 100);
        // Freed memory returns to both pools.
        drop(ra);
        assert_eq!(shared.reserved(), 40);
        rb.try_grow(60).unwrap_err();
        rb.try_grow(40).unwrap();
        assert_eq!((b.reserved(), shared.reserved()), (80, 80));
    }
}
