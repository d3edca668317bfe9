//! cargo fuzz target `compile_bounds`: see `leadtime_fuzz::compile_bounds` (fuzz/src/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = leadtime_fuzz::compile_bounds(data);
});
