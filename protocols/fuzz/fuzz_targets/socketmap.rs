//! libFuzzer harness of the `socketmap` target (`targets/socketmap.rs`, expectations there and
//! in README.md).
#![no_main]

#[path = "../targets/socketmap.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::target(data));
