//! libFuzzer harness of the `lmtp_command` target (`targets/lmtp_command.rs`, expectations there and in
//! README.md).
#![no_main]

#[path = "../targets/lmtp_command.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::target(data));
