//! libFuzzer harness of the `lmtp_session` target (`targets/lmtp_session.rs`, expectations there and in
//! README.md).
#![no_main]

#[path = "../targets/lmtp_session.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::target(data));
