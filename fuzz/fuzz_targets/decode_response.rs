//! cargo fuzz target `decode_response`: see `leadtime_fuzz::decode_response` (fuzz/src/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| leadtime_fuzz::decode_response(data));
