//! cargo fuzz target `parse_trace`: see `leadtime_fuzz::parse_trace` (fuzz/src/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = leadtime_fuzz::parse_trace(data);
});
