//! cargo fuzz target `run_module`: see `leadtime_fuzz::run_module` (fuzz/src/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| leadtime_fuzz::run_module(data));
