//! Modified UTF-7: decoding arbitrary bytes never panics, and whatever decodes re-encodes to
//! exactly the same bytes (the decoder accepts only canonical forms); any UTF-8 string
//! encodes and decodes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skua_protocols::imap::utf7;

fuzz_target!(|data: &[u8]| {
    if let Ok(name) = utf7::decode(data) {
        assert_eq!(utf7::encode_to_string(&name).as_bytes(), data);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(
            utf7::decode(utf7::encode_to_string(text).as_bytes()).unwrap(),
            text
        );
    }
});
