//! Any Kafka record: the first byte picks the content-type header (none, protobuf, JSON, JSON
//! with parameters, CSV, empty, or one taken from the input), the rest is the record value.
//! Invariants: `stockflight_fuzz::check`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (value, content_type) = stockflight_fuzz::split(data);
    stockflight_fuzz::check(value, content_type);
});
