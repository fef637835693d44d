//! Arbitrary bytes into the command parser and the continuation-line parsers: they must
//! return `Ok` or `Err`, never panic, and a parsed command must keep the tag it began with.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skua_protocols::imap::parser::{
    ParseOptions, parse_command_with, parse_idle_done, parse_sasl_response,
};

fuzz_target!(|data: &[u8]| {
    for utf8_names in [false, true] {
        let options = ParseOptions {
            utf8_names,
            ..ParseOptions::default()
        };
        if let Ok(command) = parse_command_with(data, &options) {
            assert!(data.starts_with(command.tag.as_str().as_bytes()));
        }
    }
    let _ = parse_idle_done(data);
    let _ = parse_sasl_response(data);
});
