//! Fuzzes the checksum parser (`alg:::hex` or bare md5 hex): it never panics, and a
//! parsed checksum prints as text that parses back to the same checksum.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quire::model::Checksum;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(checksum) = Checksum::parse(text) {
        let printed = checksum.to_string();
        let again = Checksum::parse(&printed).expect("a printed checksum parses");
        assert_eq!(again, checksum, "{text:?} -> {printed:?}");
    }
});
