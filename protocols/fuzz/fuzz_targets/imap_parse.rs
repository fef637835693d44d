//! libFuzzer harness of the `imap_parse` target (`targets/imap_parse.rs`, expectations there and in
//! README.md).
#![no_main]

#[path = "../targets/imap_parse.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::target(data));
