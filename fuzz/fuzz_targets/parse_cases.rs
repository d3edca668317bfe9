//! cargo fuzz target `parse_cases`: see `leadtime_fuzz::parse_cases` (fuzz/src/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = leadtime_fuzz::parse_cases(data);
});
