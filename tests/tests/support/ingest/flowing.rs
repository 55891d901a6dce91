//! A stream produced in the background while a test injects faults.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use stockflight_tests::unique;

use super::{Row, StreamSpec};

/// Records that no decoder accepts (field number 0 is invalid protobuf, and it is not JSON).
pub fn malformed_payload(i: usize) -> Vec<u8> {
    let mut payload = vec![0x00, 0x01, 0x02];
    payload.extend_from_slice(format!("malformed #{i}").as_bytes());
    payload
}

/// A stream being produced in chunks with pauses, so it is still flowing while a test injects
/// faults; `done` turns true once every record is in Kafka.
pub struct FlowingStream {
    pub topic: String,
    pub keyspace: String,
    pub group: String,
    pub expected: HashMap<(String, String), Row>,
    done: Arc<AtomicBool>,
    /// Resolves to the (partition, offset) of every malformed record produced.
    producing: tokio::task::JoinHandle<Vec<(i32, i64)>>,
}

impl FlowingStream {
    /// Creates a fresh topic with `partitions`, keyspace and group, and starts producing
    /// `updates` generated records from `seed` in chunks of 500 every 500 ms.
    pub async fn start(name: &str, partitions: i32, updates: usize, seed: u64) -> Self {
        Self::start_with(name, partitions, updates, seed, 0).await
    }

    /// [`FlowingStream::start`] with `malformed` undecodable records, one after each of the
    /// first chunks.
    pub async fn start_with(name: &str, partitions: i32, updates: usize, seed: u64, malformed: usize) -> Self {
        let topic = unique(name);
        super::create_topic(&topic, partitions).await;
        let records = super::generate(&StreamSpec {
            items: 500,
            nodes: 10,
            updates,
            seed,
        });
        let expected = super::model(&records);
        let done = Arc::new(AtomicBool::new(false));
        let producing = {
            let (topic, records, done) = (topic.clone(), records.clone(), Arc::clone(&done));
            tokio::spawn(async move {
                let producer = super::producer();
                let mut bad = Vec::new();
                for (i, part) in records.chunks(500).enumerate() {
                    super::produce(&producer, &topic, part).await;
                    if i < malformed {
                        let record = (format!("bad-{i}"), malformed_payload(i), None);
                        bad.extend(super::produce_raw(&producer, &topic, &[record]).await);
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                assert_eq!(
                    bad.len(),
                    malformed,
                    "the stream is too short for {malformed} malformed records"
                );
                done.store(true, Ordering::SeqCst);
                bad
            })
        };
        Self {
            topic,
            keyspace: unique("ingest"),
            group: unique("group"),
            expected,
            done,
            producing,
        }
    }

    /// The stream is still being produced.
    pub fn flowing(&self) -> bool {
        !self.done.load(Ordering::SeqCst)
    }

    /// Waits for the producer to finish, then for the table to equal the model of the stream;
    /// returns the positions of the malformed records.
    pub async fn wait_table(self) -> Vec<(i32, i64)> {
        let bad = self.producing.await.expect("producer");
        super::wait_for_table(&self.keyspace, &self.expected, Duration::from_secs(180)).await;
        bad
    }
}
