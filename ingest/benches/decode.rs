//! The CPU path of one record: decode (protobuf or JSON) and validate.
//!
//! `cargo bench -p stockflight-ingest --bench decode`; per-record time, so 1 / time is the rate
//! one core sustains on this path (target: >= 1M records/s).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use stockflight_ingest::decode::decode;
use stockflight_proto::cassandra::write_timestamp;
use stockflight_proto::v1::{AvailabilityStatus, AvailabilityUpdate};

fn update(i: u64) -> AvailabilityUpdate {
    AvailabilityUpdate {
        item_id: format!("sku-{:08}", i * 7919 % 100_000),
        node_id: format!("store-{:05}", i % 500),
        available_qty: (i % 200) as i64,
        reserved_qty: (i % 7) as i64,
        status: AvailabilityStatus::InStock as i32,
        event_time_us: 1_764_000_000_000_000 + i as i64 * 1000,
        source: "pos".into(),
        sequence: i,
    }
}

fn bench(c: &mut Criterion) {
    let protobuf: Vec<Vec<u8>> = (0..1024).map(|i| update(i).encode_to_vec()).collect();
    let json: Vec<Vec<u8>> = (0..1024).map(|i| stockflight_proto::json::encode(&update(i))).collect();
    let mut group = c.benchmark_group("decode_validate");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("protobuf", |b| {
        b.iter(|| {
            i = (i + 1) % protobuf.len();
            let u = decode(Some(black_box(&protobuf[i])), None).unwrap();
            black_box(write_timestamp(&u))
        })
    });
    group.bench_function("json", |b| {
        b.iter(|| {
            i = (i + 1) % json.len();
            let u = decode(Some(black_box(&json[i])), Some(b"application/json")).unwrap();
            black_box(write_timestamp(&u))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
