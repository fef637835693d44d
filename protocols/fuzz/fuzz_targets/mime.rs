//! libFuzzer harness of the `mime` target (`targets/mime.rs`, expectations there and in
//! README.md).
#![no_main]

#[path = "../targets/mime.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::target(data));
