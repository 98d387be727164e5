//! Fuzzes file-name validation: it never panics, and an accepted name is relative,
//! stays inside the store root, is in normal form (NFC included) and has no control
//! characters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quire::model::validate_file_name;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    if validate_file_name(name).is_err() {
        return;
    }
    assert!(!name.is_empty() && !name.starts_with('/'), "{name:?}");
    assert!(!name.chars().any(char::is_control), "{name:?}");
    for part in name.split('/') {
        assert!(!part.is_empty() && part != "." && part != "..", "{name:?}");
    }
    assert!(
        quire::model::is_nfc(name),
        "accepted a name not in NFC: {name:?}"
    );
});
