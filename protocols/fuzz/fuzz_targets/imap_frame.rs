//! libFuzzer harness of the `imap_frame` target (`targets/imap_frame.rs`, expectations there and in
//! README.md).
#![no_main]

#[path = "../targets/imap_frame.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::target(data));
