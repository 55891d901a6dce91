//! The update stream: Zipf-skewed items, uniform nodes, late events and redeliveries, all from
//! one seed.

use std::collections::VecDeque;

use prost::Message as _;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Zipf};
use stockflight_proto::v1::{AvailabilityStatus, AvailabilityUpdate};

use crate::catalog::{self, NodeType};
use crate::settings::Encoding;

/// What the stream is made of.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// Items in the catalog.
    pub items: u64,
    /// Nodes in the dimension.
    pub nodes: u64,
    /// Seed.
    pub seed: u64,
    /// Zipf exponent of item popularity; 0 = uniform.
    pub zipf_exponent: f64,
    /// Share of exact repeats of a recent message.
    pub duplicate_ratio: f64,
    /// Share of events dated up to a minute back.
    pub out_of_order_ratio: f64,
    /// How events are dated.
    pub clock: EventClock,
    /// Wire encoding.
    pub encoding: Encoding,
}

/// How the stream dates its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventClock {
    /// Message `i` is dated `start_us + i` ms: reproducible, for tests and replays. A long stream
    /// runs ahead of the wall clock (1000 messages per second of event time).
    Fixed {
        /// Event time of message 0, microseconds since the epoch.
        start_us: i64,
    },
    /// Each message is dated with the wall clock when it is generated (strictly increasing),
    /// as a real producer stamps its updates.
    Wall,
}

/// One Kafka record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `kafka_key(item, node)`.
    pub key: String,
    /// Encoded update.
    pub payload: Vec<u8>,
}

/// How many recent records a duplicate may repeat.
const RECENT: usize = 1024;
/// How far back a late event may be dated.
const MAX_LATENESS_US: i64 = 60_000_000;

/// An endless, deterministic iterator of records.
pub struct UpdateStream {
    options: StreamOptions,
    rng: ChaCha8Rng,
    zipf: Option<Zipf<f64>>,
    index: u64,
    sequences: [u64; 3],
    recent: VecDeque<Record>,
    last_event_us: i64,
}

impl UpdateStream {
    /// A stream; panics only on options that validation rejects.
    pub fn new(options: StreamOptions) -> Self {
        let zipf = (options.zipf_exponent > 0.0)
            .then(|| Zipf::new(options.items as f64, options.zipf_exponent).expect("validated exponent"));
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
        rng.set_stream(3);
        Self {
            options,
            rng,
            zipf,
            index: 0,
            sequences: [0; 3],
            recent: VecDeque::with_capacity(RECENT),
            last_event_us: 0,
        }
    }

    fn event_time_us(&mut self) -> i64 {
        match self.options.clock {
            EventClock::Fixed { start_us } => start_us + self.index as i64 * 1000,
            EventClock::Wall => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_micros() as i64);
                self.last_event_us = now.max(self.last_event_us + 1);
                self.last_event_us
            }
        }
    }

    fn fresh(&mut self) -> Record {
        let item = match &self.zipf {
            // Rank 1 is the most popular item.
            Some(zipf) => (zipf.sample(&mut self.rng) as u64).clamp(1, self.options.items) - 1,
            None => self.rng.random_range(0..self.options.items),
        };
        let node = self.rng.random_range(0..self.options.nodes);
        let node_type = NodeType::of(node);
        let mut event_time_us = self.event_time_us();
        if self.rng.random_bool(self.options.out_of_order_ratio) {
            event_time_us = (event_time_us - self.rng.random_range(1..=MAX_LATENESS_US)).max(1);
        }
        let source = match node_type {
            NodeType::Store => 0,
            NodeType::Warehouse => 1,
            NodeType::FulfilmentCentre => 2,
        };
        self.sequences[source] += 1;
        let available_qty = if self.rng.random_bool(0.1) {
            0
        } else {
            self.rng.random_range(1..200)
        };
        let status = match available_qty {
            0 if self.rng.random_bool(0.05) => AvailabilityStatus::Discontinued,
            0 => AvailabilityStatus::OutOfStock,
            1..=5 => AvailabilityStatus::LowStock,
            _ => AvailabilityStatus::InStock,
        };
        let update = AvailabilityUpdate {
            item_id: catalog::item_id(item),
            node_id: catalog::node_id(node),
            available_qty,
            reserved_qty: self.rng.random_range(0..10),
            status: status as i32,
            event_time_us,
            source: node_type.source().to_string(),
            sequence: self.sequences[source],
        };
        let payload = match self.options.encoding {
            Encoding::Protobuf => update.encode_to_vec(),
            Encoding::Json => stockflight_proto::json::encode(&update),
        };
        Record {
            key: stockflight_proto::kafka_key(&update.item_id, &update.node_id),
            payload,
        }
    }
}

impl Iterator for UpdateStream {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let duplicate = !self.recent.is_empty() && self.rng.random_bool(self.options.duplicate_ratio);
        let record = if duplicate {
            let pick = self.rng.random_range(0..self.recent.len());
            self.recent[pick].clone()
        } else {
            let record = self.fresh();
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(record.clone());
            record
        };
        self.index += 1;
        Some(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn options() -> StreamOptions {
        StreamOptions {
            items: 1000,
            nodes: 20,
            seed: 5,
            zipf_exponent: 1.0,
            duplicate_ratio: 0.1,
            out_of_order_ratio: 0.2,
            clock: EventClock::Fixed {
                start_us: 1_764_000_000_000_000,
            },
            encoding: Encoding::Protobuf,
        }
    }

    #[test]
    fn same_seed_same_stream() {
        let a: Vec<_> = UpdateStream::new(options()).take(500).collect();
        let b: Vec<_> = UpdateStream::new(options()).take(500).collect();
        assert_eq!(a, b);
        let c: Vec<_> = UpdateStream::new(StreamOptions { seed: 6, ..options() })
            .take(500)
            .collect();
        assert_ne!(a, c);
    }

    #[test]
    fn updates_are_valid_and_skewed() {
        let mut per_item: HashMap<String, usize> = HashMap::new();
        for record in UpdateStream::new(options()).take(20_000) {
            let u = AvailabilityUpdate::decode(record.payload.as_slice()).unwrap();
            stockflight_proto::validate::validate(&u).unwrap();
            *per_item.entry(u.item_id).or_default() += 1;
        }
        let top = per_item.values().max().copied().unwrap();
        let mean = 20_000 / per_item.len();
        assert!(top > 10 * mean, "top item {top} vs mean {mean}: Zipf skew expected");
    }

    #[test]
    fn wall_clock_events_stay_near_now_and_increase() {
        let now = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_micros() as i64
        };
        let before = now();
        let options = StreamOptions {
            clock: EventClock::Wall,
            out_of_order_ratio: 0.0,
            duplicate_ratio: 0.0,
            ..options()
        };
        let times: Vec<i64> = UpdateStream::new(options)
            .take(50_000)
            .map(|r| AvailabilityUpdate::decode(r.payload.as_slice()).unwrap().event_time_us)
            .collect();
        let after = now();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
        assert!(times[0] >= before, "not before the stream started");
        // 50,000 messages at 1 ms each would end 50 s ahead; the wall clock stays within the run
        // (plus at most one microsecond per message where the clock did not move).
        assert!(
            *times.last().unwrap() <= after + 50_000,
            "{} > {after}",
            times.last().unwrap()
        );
    }
}
