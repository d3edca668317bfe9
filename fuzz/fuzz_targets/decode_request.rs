//! cargo fuzz target `decode_request`: see `leadtime_fuzz::decode_request` (fuzz/src/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| leadtime_fuzz::decode_request(data));
