//! libFuzzer harness of the `store_index` target (`targets/store_index.rs`, expectations in
//! `targets/store_support.rs` and README.md).
#![no_main]

#[path = "../targets/store_support.rs"]
#[allow(dead_code, reason = "each harness uses one file kind")]
mod store_support;
#[path = "../targets/store_index.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::target(data));
