//! cargo fuzz target `run_smith`: see `leadtime_fuzz::run_smith` (fuzz/src/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| leadtime_fuzz::run_smith(data));
