//! libFuzzer harness of the `imap_utf7` target (`targets/imap_utf7.rs`, expectations there and in
//! README.md).
#![no_main]

#[path = "../targets/imap_utf7.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::target(data));
