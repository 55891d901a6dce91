//! A record with `content-type: application/json`: the whole input is the record value, so the
//! fuzzer spends its time inside the JSON decoder (run with `fuzz/json.dict`).
//! Invariants: `stockflight_fuzz::check`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    stockflight_fuzz::check(Some(data), Some(stockflight_proto::JSON_CONTENT_TYPE.as_bytes()));
});
