//! The snapshot as of now: the changes since its cut-off merged into it by last write wins, with
//! the aggregates' deltas kept up to date change by change, so a query's cost follows the
//! number of changed pairs, never the size of the table.
//!
//! # The rule
//!
//! Ingest's rule, the availability table's: of two updates of a pair the one with the greater
//! write timestamp (its event time in microseconds) wins, and on equal timestamps the one whose
//! cell bytes are greater ([`State::cell_bytes`]). Changes carry their exact write timestamp
//! (`WRITETIME(state)`), so they are ranked exactly among themselves. A snapshot row only keeps
//! the event time in milliseconds: against it a change wins or loses by its millisecond, and when
//! both fall in the same millisecond and differ the pair is *undecided* until Cassandra's own row
//! is read ([`Merged::settle`]), which is the winner by definition.
//!
//! Ingest never deletes: a pair a change adds (not in the snapshot) is a new row. Rows an
//! operator deletes or writes in plain CQL are not in the change log: `availability_live` shows
//! them at once, `availability_current` from the next snapshot.

use std::collections::{HashMap, HashSet};

use stockflight_proto::cassandra::State;
use stockflight_proto::tables::PARTIAL_COLUMNS;

use super::reference::{Group, Reference};
use super::snapshot_rows::{SnapshotRow, SnapshotRows};

/// One logged update with its exact rank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Its write timestamp: the event time in microseconds.
    pub write_us: i64,
    /// The whole update.
    pub state: State,
}

impl Change {
    /// Ingest's order of two updates of one pair (see the module docs).
    pub fn beats(&self, other: &Change) -> bool {
        (self.write_us, self.state.cell_bytes()) > (other.write_us, other.state.cell_bytes())
    }

    /// Whether this is the update the snapshot row holds.
    fn is(&self, row: &SnapshotRow) -> bool {
        let s = &self.state;
        s.available_qty == row.available_qty
            && s.reserved_qty == row.reserved_qty
            && s.status == row.status
            && s.source == row.source
            && s.sequence == row.sequence
            && s.event_time.map(|t| t.0.saturating_mul(1000)) == row.event_time_us
    }
}

/// How a change fares against the snapshot's row of its pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It is newer.
    Wins,
    /// It is older, or the very update the snapshot holds.
    Loses,
    /// Same millisecond, different update: Cassandra's row decides.
    Undecided,
}

/// `change` against `row` (see the module docs).
pub fn against_snapshot(change: &Change, row: &SnapshotRow) -> Verdict {
    let change_ms = change.write_us.div_euclid(1000);
    let row_ms = row.event_time_us.map_or(i64::MIN, |t| t.div_euclid(1000));
    match change_ms.cmp(&row_ms) {
        std::cmp::Ordering::Greater => Verdict::Wins,
        std::cmp::Ordering::Less => Verdict::Loses,
        std::cmp::Ordering::Equal if change.is(row) => Verdict::Loses,
        std::cmp::Ordering::Equal => Verdict::Undecided,
    }
}

/// The additive measures of some rows, in [`PARTIAL_COLUMNS`] order.
pub type Partials = [i64; PARTIAL_COLUMNS.len()];

/// What one row adds to its groups' measures (`stockflight_proto::tables::PARTIAL_MEASURES`).
pub fn contribution(status: Option<i8>, available_qty: Option<i64>, reserved_qty: Option<i64>) -> Partials {
    let is = |code: i8| i64::from(status == Some(code));
    [
        1,
        is(1),
        is(2),
        is(3),
        is(4),
        available_qty.unwrap_or(0),
        reserved_qty.unwrap_or(0),
    ]
}

fn of_state(s: &State) -> Partials {
    contribution(s.status, s.available_qty, s.reserved_qty)
}

fn of_row(r: &SnapshotRow) -> Partials {
    contribution(r.status, r.available_qty, r.reserved_qty)
}

/// A pair's ids.
pub type Pair = (String, String);

/// One snapshot's changes, merged.
#[derive(Debug, Default)]
pub struct Merged {
    /// Pairs whose winner is a change (not the snapshot's row), with that change.
    winners: HashMap<Pair, Change>,
    /// Pairs waiting for Cassandra's row to decide them.
    undecided: HashSet<Pair>,
    by_region_category: HashMap<Group, Partials>,
    by_node: HashMap<String, Partials>,
    by_item: HashMap<String, Partials>,
    applied: u64,
    /// Bumped by every call that may change the winners: equal versions, equal state.
    version: u64,
}

impl Merged {
    /// Merges one logged change of `(item_id, node_id)`.
    pub fn apply(
        &mut self,
        item_id: &str,
        node_id: &str,
        change: Change,
        snapshot: &SnapshotRows,
        reference: &Reference,
    ) {
        self.applied += 1;
        self.version += 1;
        let pair = (item_id.to_string(), node_id.to_string());
        let before = match self.winners.get(&pair) {
            Some(best) if change.beats(best) => of_state(&best.state),
            Some(_) => return,
            None => match snapshot.get(item_id, node_id) {
                None => [0; PARTIAL_COLUMNS.len()],
                Some(row) => match against_snapshot(&change, &row) {
                    Verdict::Wins => of_row(&row),
                    Verdict::Loses => return,
                    Verdict::Undecided => {
                        self.undecided.insert(pair);
                        return;
                    }
                },
            },
        };
        self.add(reference, &pair, before, of_state(&change.state));
        self.undecided.remove(&pair);
        self.winners.insert(pair, change);
    }

    /// Decides an undecided pair with Cassandra's row of it (`None`: no row, left as it is).
    pub fn settle(&mut self, pair: &Pair, truth: Option<Change>, snapshot: &SnapshotRows, reference: &Reference) {
        self.version += 1;
        if !self.undecided.remove(pair) {
            return;
        }
        let Some(truth) = truth else { return };
        if self.winners.contains_key(pair) {
            return self.apply(&pair.0, &pair.1, truth, snapshot, reference);
        }
        match snapshot.get(&pair.0, &pair.1) {
            // Cassandra still holds the snapshot's update: it stays.
            Some(row) if truth.is(&row) => {}
            Some(row) => {
                self.add(reference, pair, of_row(&row), of_state(&truth.state));
                self.winners.insert(pair.clone(), truth);
            }
            None => self.apply(&pair.0, &pair.1, truth, snapshot, reference),
        }
    }

    /// Pairs waiting for Cassandra's row.
    pub fn undecided(&self) -> Vec<Pair> {
        self.undecided.iter().cloned().collect()
    }

    fn add(&mut self, reference: &Reference, (item_id, node_id): &Pair, before: Partials, after: Partials) {
        let mut delta = after;
        for (d, b) in delta.iter_mut().zip(before) {
            *d -= b;
        }
        let bump = |sum: &mut Partials| {
            for (s, d) in sum.iter_mut().zip(delta) {
                *s += d;
            }
        };
        bump(
            self.by_region_category
                .entry(reference.group(item_id, node_id))
                .or_default(),
        );
        bump(self.by_node.entry(node_id.clone()).or_default());
        bump(self.by_item.entry(item_id.clone()).or_default());
    }

    /// The pairs whose winner is a change, with it.
    pub fn winners(&self) -> &HashMap<Pair, Change> {
        &self.winners
    }

    /// Measure deltas per region x department x category.
    pub fn by_region_category(&self) -> &HashMap<Group, Partials> {
        &self.by_region_category
    }

    /// Measure deltas per node.
    pub fn by_node(&self) -> &HashMap<String, Partials> {
        &self.by_node
    }

    /// Measure deltas per item.
    pub fn by_item(&self) -> &HashMap<String, Partials> {
        &self.by_item
    }

    /// Changes merged so far (duplicates and losers included).
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Changes with every call that may change the winners (for caches of what they derive).
    pub fn version(&self) -> u64 {
        self.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scylla::value::CqlTimestamp;

    fn change(write_us: i64, sequence: i64, source: &str, qty: i64) -> Change {
        Change {
            write_us,
            state: State {
                sequence: Some(sequence),
                source: Some(source.into()),
                available_qty: Some(qty),
                reserved_qty: Some(1),
                status: Some(1),
                event_time: Some(CqlTimestamp(write_us.div_euclid(1000))),
            },
        }
    }

    fn row_of(c: &Change) -> SnapshotRow {
        SnapshotRow {
            available_qty: c.state.available_qty,
            reserved_qty: c.state.reserved_qty,
            status: c.state.status,
            event_time_us: c.state.event_time.map(|t| t.0 * 1000),
            source: c.state.source.clone(),
            sequence: c.state.sequence,
        }
    }

    #[test]
    fn changes_rank_by_microsecond_then_cell_bytes() {
        let base = 1_764_000_000_000_000;
        assert!(change(base + 1, 1, "pos", 1).beats(&change(base, 9, "pos", 1)));
        assert!(change(base, 1000, "pos", 1).beats(&change(base, 999, "pos", 1)));
        assert!(change(base, 7, "oms-eu", 1).beats(&change(base, 7, "wms", 9)));
        assert!(!change(base, 7, "pos", 1).beats(&change(base, 7, "pos", 1)));
    }

    #[test]
    fn against_the_snapshot_only_a_shared_millisecond_is_undecided() {
        let base = 1_764_000_000_000_000;
        let held = change(base + 500, 5, "pos", 3);
        let row = row_of(&held);
        assert_eq!(against_snapshot(&change(base + 1000, 1, "pos", 1), &row), Verdict::Wins);
        assert_eq!(against_snapshot(&change(base - 1, 99, "pos", 1), &row), Verdict::Loses);
        // The snapshot's own update, logged again (a replay): nothing to do.
        assert_eq!(against_snapshot(&held, &row), Verdict::Loses);
        // Same millisecond, another update: the microseconds the snapshot lost decide.
        assert_eq!(
            against_snapshot(&change(base + 999, 1, "pos", 1), &row),
            Verdict::Undecided
        );
        assert_eq!(
            against_snapshot(&change(base + 1, 9, "pos", 1), &row),
            Verdict::Undecided
        );
    }

    /// How the model groups a pair.
    type KeyOf<'a> = dyn Fn(&Pair) -> String + 'a;

    /// Random changes merged one by one into a small snapshot (settling undecided pairs with
    /// the winner so far, as Cassandra's row is) leave exactly the model's winners and deltas:
    /// the model ranks every update by its exact microsecond, the merge only sees the snapshot's
    /// milliseconds.
    #[tokio::test]
    async fn merged_changes_equal_a_model_of_last_write_wins() {
        use std::sync::Arc;

        use arrow::array::{Int8Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
        use datafusion::prelude::SessionContext;

        let base = 1_764_000_000_000_000i64;
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let items = ["i0", "i1", "i2", "i3"]; // i3 is not in the catalog
        let nodes = ["n0", "n1", "n2"]; // n2 is not in the dimension
        let ctx = SessionContext::new();
        let text = |v: &[&str]| Arc::new(StringArray::from(v.to_vec())) as arrow::array::ArrayRef;
        ctx.register_batch(
            "items",
            RecordBatch::try_from_iter([
                ("item_id", text(&items[..3])),
                ("department", text(&["d0", "d1", "d0"])),
                ("category", text(&["c0", "c1", "c2"])),
            ])
            .unwrap(),
        )
        .unwrap();
        ctx.register_batch(
            "nodes",
            RecordBatch::try_from_iter([("node_id", text(&nodes[..2])), ("region", text(&["east", "west"]))]).unwrap(),
        )
        .unwrap();
        // The snapshot: the pairs of i0..i2 x n0..n1, each an update at an exact microsecond.
        let mut model: HashMap<Pair, Change> = HashMap::new();
        for i in &items[..3] {
            for n in &nodes[..2] {
                let c = change(base + next(5_000) as i64, next(9) as i64, "pos", next(30) as i64);
                model.insert((i.to_string(), n.to_string()), c);
            }
        }
        let snapshot_pairs: Vec<(Pair, Change)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let col = |f: &dyn Fn(&(Pair, Change)) -> Option<i64>| snapshot_pairs.iter().map(f).collect::<Int64Array>();
        ctx.register_batch(
            "availability_snapshot",
            RecordBatch::try_from_iter([
                (
                    "item_id",
                    Arc::new(
                        snapshot_pairs
                            .iter()
                            .map(|(p, _)| Some(p.0.as_str()))
                            .collect::<StringArray>(),
                    ) as _,
                ),
                (
                    "node_id",
                    Arc::new(
                        snapshot_pairs
                            .iter()
                            .map(|(p, _)| Some(p.1.as_str()))
                            .collect::<StringArray>(),
                    ) as _,
                ),
                ("available_qty", Arc::new(col(&|(_, c)| c.state.available_qty)) as _),
                ("reserved_qty", Arc::new(col(&|(_, c)| c.state.reserved_qty)) as _),
                (
                    "status",
                    Arc::new(
                        snapshot_pairs
                            .iter()
                            .map(|(_, c)| c.state.status)
                            .collect::<Int8Array>(),
                    ) as _,
                ),
                (
                    "event_time",
                    Arc::new(
                        snapshot_pairs
                            .iter()
                            .map(|(_, c)| c.state.event_time.map(|t| t.0 * 1000))
                            .collect::<TimestampMicrosecondArray>(),
                    ) as _,
                ),
                (
                    "source",
                    Arc::new(
                        snapshot_pairs
                            .iter()
                            .map(|(_, c)| c.state.source.clone())
                            .collect::<StringArray>(),
                    ) as _,
                ),
                ("sequence", Arc::new(col(&|(_, c)| c.state.sequence)) as _),
            ])
            .unwrap(),
        )
        .unwrap();
        let reference = Reference::load(&ctx).await.unwrap();
        let rows = SnapshotRows::load(&ctx).await.unwrap();
        assert_eq!(rows.len(), 6);
        let at_snapshot = model;

        let mut undecided_seen = 0;
        for _round in 0..30 {
            let mut merged = Merged::default();
            let mut model = at_snapshot.clone();
            for _ in 0..100 {
                let pair = (items[next(4) as usize].to_string(), nodes[next(3) as usize].to_string());
                // Often in the millisecond of the pair's snapshot row, to test what the snapshot lost.
                let write_us = match at_snapshot.get(&pair) {
                    Some(row) if next(2) == 0 => row.write_us.div_euclid(1000) * 1000 + next(1000) as i64,
                    _ => base + next(6_000) as i64,
                };
                let sources = ["pos", "wms", "oms-eu"];
                let c = change(write_us, next(12) as i64, sources[next(3) as usize], next(40) as i64);
                if model.get(&pair).is_none_or(|best| c.beats(best)) {
                    model.insert(pair.clone(), c.clone());
                }
                merged.apply(&pair.0, &pair.1, c, &rows, &reference);
                for p in merged.undecided() {
                    undecided_seen += 1;
                    merged.settle(&p, model.get(&p).cloned(), &rows, &reference);
                }
            }

            // Winners: exactly the pairs whose model winner is not the snapshot's update.
            let changed: HashMap<&Pair, &Change> =
                model.iter().filter(|(p, c)| at_snapshot.get(*p) != Some(*c)).collect();
            assert_eq!(merged.winners().len(), changed.len());
            for (pair, c) in &changed {
                assert_eq!(merged.winners().get(*pair), Some(*c), "{pair:?}");
            }
            // Deltas: the model's measures minus the snapshot's, per node, per item, per group.
            let sum = |table: &HashMap<Pair, Change>, key: &dyn Fn(&Pair) -> String| {
                let mut out: HashMap<String, Partials> = HashMap::new();
                for (p, c) in table {
                    let e = out.entry(key(p)).or_default();
                    for (s, v) in e.iter_mut().zip(of_state(&c.state)) {
                        *s += v;
                    }
                }
                out
            };
            let group = |p: &Pair| format!("{:?}", reference.group(&p.0, &p.1));
            let keys: [(&str, &KeyOf<'_>); 3] = [
                ("node", &|p| p.1.clone()),
                ("item", &|p| p.0.clone()),
                ("group", &group),
            ];
            for (what, key) in keys {
                let (now, then) = (sum(&model, key), sum(&at_snapshot, key));
                let delta: HashMap<String, Partials> = match what {
                    "node" => merged.by_node().iter().map(|(k, v)| (k.clone(), *v)).collect(),
                    "item" => merged.by_item().iter().map(|(k, v)| (k.clone(), *v)).collect(),
                    _ => merged
                        .by_region_category()
                        .iter()
                        .map(|(k, v)| (format!("{k:?}"), *v))
                        .collect(),
                };
                for k in now.keys().chain(then.keys()) {
                    let zero = [0; PARTIAL_COLUMNS.len()];
                    let want: Vec<i64> = now
                        .get(k)
                        .unwrap_or(&zero)
                        .iter()
                        .zip(then.get(k).unwrap_or(&zero))
                        .map(|(a, b)| a - b)
                        .collect();
                    assert_eq!(delta.get(k).unwrap_or(&zero).to_vec(), want, "{what} {k}");
                }
            }
        }
        assert!(
            undecided_seen > 20,
            "{undecided_seen} undecided pairs: the test aims at shared milliseconds"
        );
        assert_eq!(
            reference.group("i3", "n2"),
            ("unknown".into(), "unknown".into(), "unknown".into())
        );
    }

    #[test]
    fn a_row_counts_once_in_each_measure() {
        assert_eq!(contribution(Some(2), Some(4), None), [1, 0, 1, 0, 0, 4, 0]);
        assert_eq!(contribution(None, None, Some(3)), [1, 0, 0, 0, 0, 0, 3]);
    }
}
