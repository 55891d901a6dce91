//! Which offset of each partition may be committed: the first one not yet durably handled.
//!
//! Updates of a partition are written concurrently and finish in any order, so the committable
//! offset is the lowest offset still in flight, or one past the highest offset seen when none
//! is. Offsets between fetched records (compaction gaps, transaction markers) never block it.

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
struct Partition {
    /// Offsets fetched and not yet written (or dead-lettered).
    in_flight: BTreeSet<i64>,
    /// One past the highest offset fetched, once one has been.
    next: Option<i64>,
    /// The last offset handed out for commit.
    committed: Option<i64>,
}

impl Partition {
    fn committable(&self) -> Option<i64> {
        self.in_flight.first().copied().or(self.next)
    }
}

/// Per-partition progress of the partitions this instance owns.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<i32, Partition>,
}

impl OffsetTracker {
    /// Starts tracking newly assigned partitions (fresh state: nothing in flight).
    pub fn assign(&mut self, partitions: impl IntoIterator<Item = i32>) {
        for p in partitions {
            self.partitions.insert(p, Partition::default());
        }
    }

    /// Stops tracking revoked partitions: their late completions are ignored and nothing of
    /// theirs is committed any more.
    pub fn revoke(&mut self, partitions: impl IntoIterator<Item = i32>) {
        for p in partitions {
            self.partitions.remove(&p);
        }
    }

    /// Whether the partition is currently owned.
    pub fn owns(&self, partition: i32) -> bool {
        self.partitions.contains_key(&partition)
    }

    /// Records a fetched record; false if its partition is not owned (then skip it).
    pub fn start(&mut self, partition: i32, offset: i64) -> bool {
        let Some(p) = self.partitions.get_mut(&partition) else {
            return false;
        };
        p.in_flight.insert(offset);
        p.next = Some(p.next.map_or(offset + 1, |n| n.max(offset + 1)));
        true
    }

    /// Records that a record is durably handled.
    pub fn finish(&mut self, partition: i32, offset: i64) {
        if let Some(p) = self.partitions.get_mut(&partition) {
            p.in_flight.remove(&offset);
        }
    }

    /// Records still in flight in the given partitions.
    pub fn in_flight(&self, partitions: &[i32]) -> usize {
        partitions
            .iter()
            .filter_map(|p| self.partitions.get(p))
            .map(|p| p.in_flight.len())
            .sum()
    }

    /// The committable offset of one partition (the next offset a consumer should read).
    pub fn committable(&self, partition: i32) -> Option<i64> {
        self.partitions.get(&partition).and_then(Partition::committable)
    }

    /// Every owned partition's committable offset, marking them committed (final commit: also
    /// repeats commits that may have failed).
    pub fn take_all_commits(&mut self) -> Vec<(i32, i64)> {
        let mut out = Vec::new();
        for (&id, p) in &mut self.partitions {
            if let Some(offset) = p.committable() {
                p.committed = Some(offset);
                out.push((id, offset));
            }
        }
        out.sort_unstable();
        out
    }

    /// Partitions whose committable offset moved since the last call, marking them committed.
    pub fn take_commits(&mut self) -> Vec<(i32, i64)> {
        let mut out = Vec::new();
        for (&id, p) in &mut self.partitions {
            if let Some(offset) = p.committable()
                && p.committed != Some(offset)
            {
                p.committed = Some(offset);
                out.push((id, offset));
            }
        }
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_waits_for_the_oldest_in_flight() {
        let mut t = OffsetTracker::default();
        t.assign([0]);
        for o in 10..15 {
            assert!(t.start(0, o));
        }
        t.finish(0, 11);
        t.finish(0, 12);
        assert_eq!(t.committable(0), Some(10), "10 is not written yet");
        t.finish(0, 10);
        assert_eq!(t.committable(0), Some(13));
        t.finish(0, 14);
        assert_eq!(t.committable(0), Some(13));
        t.finish(0, 13);
        assert_eq!(t.committable(0), Some(15));
    }

    #[test]
    fn gaps_between_offsets_do_not_block() {
        let mut t = OffsetTracker::default();
        t.assign([3]);
        t.start(3, 100);
        t.start(3, 105);
        t.finish(3, 105);
        t.finish(3, 100);
        assert_eq!(t.committable(3), Some(106));
    }

    #[test]
    fn commits_are_handed_out_once_per_move() {
        let mut t = OffsetTracker::default();
        t.assign([0, 1]);
        assert!(t.take_commits().is_empty(), "nothing fetched, nothing to commit");
        t.start(0, 0);
        t.start(1, 7);
        t.finish(1, 7);
        assert_eq!(t.take_commits(), vec![(0, 0), (1, 8)]);
        assert!(t.take_commits().is_empty());
        assert_eq!(
            t.take_all_commits(),
            vec![(0, 0), (1, 8)],
            "the final commit repeats them"
        );
        t.finish(0, 0);
        assert_eq!(t.take_commits(), vec![(0, 1)]);
    }

    #[test]
    fn revoked_partitions_are_forgotten() {
        let mut t = OffsetTracker::default();
        t.assign([0, 1]);
        t.start(0, 5);
        t.start(1, 5);
        assert_eq!(t.in_flight(&[0, 1]), 2);
        t.revoke([0]);
        assert!(!t.owns(0));
        assert!(!t.start(0, 6), "records of a partition we lost are skipped");
        t.finish(0, 5); // a late completion: ignored
        assert_eq!(t.in_flight(&[0, 1]), 1);
        assert_eq!(t.committable(0), None);
    }
}
