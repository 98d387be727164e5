//! The rules for a file's name (its `destination_location`): a relative path that
//! stays inside the store root and is already in normal form, Unicode NFC included.
//!
//! Names are compared byte for byte, so `café` written precomposed (NFC) and
//! decomposed (NFD) would be two files that look the same. Non-NFC names are
//! refused with the NFC spelling rather than silently rewritten: a client that
//! stages one name and later searches, validates or deletes by the name it sent
//! would otherwise never find its file.

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// Prefix of the directories quire keeps inside a store root (its staging area);
/// no file name may start with it.
pub const RESERVED_PREFIX: &str = ".quire";

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the name is empty")]
    Empty,
    #[error("the name '{0}' is absolute; names are paths relative to the store root")]
    Absolute(String),
    #[error("the name '{0}' contains '..', which would leave the store root")]
    ParentComponent(String),
    #[error("the name '{name}' is not in normal form; use '{normal}'")]
    NotNormal { name: String, normal: String },
    #[error("the name {0:?} contains a NUL or control character")]
    ControlCharacter(String),
    #[error(
        "the name '{name}' is not in Unicode normalization form C (NFC); send it as '{nfc}' \
         (precomposed characters), so that one name cannot be spelt two ways"
    )]
    NotNfc { name: String, nfc: String },
    #[error("the name '{0}' contains a backslash; use '/' between directories")]
    Backslash(String),
    #[error("the name '{0}' starts with the reserved '{RESERVED_PREFIX}' prefix")]
    Reserved(String),
    #[error("the name '{0}' is longer than 4096 bytes or has a component over 255 bytes")]
    TooLong(String),
}

/// Whether `text` is in Unicode normalization form C.
pub fn is_nfc(text: &str) -> bool {
    match is_nfc_quick(text.chars()) {
        IsNormalized::Yes => true,
        IsNormalized::No => false,
        IsNormalized::Maybe => text.nfc().eq(text.chars()),
    }
}

/// Checks a file name. A name is accepted only if it is already in normal form, so
/// that two different strings can never name the same stored path.
pub fn validate_file_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    // First, so that no other refusal (whose message quotes the name as it is)
    // carries a control character into a log line.
    if name.chars().any(|c| c.is_control()) {
        return Err(NameError::ControlCharacter(name.into()));
    }
    if name.starts_with('/') {
        return Err(NameError::Absolute(name.into()));
    }
    if !is_nfc(name) {
        return Err(NameError::NotNfc {
            name: name.into(),
            nfc: name.nfc().collect(),
        });
    }
    if name.contains('\\') {
        return Err(NameError::Backslash(name.into()));
    }
    if name.len() > 4096 || name.split('/').any(|part| part.len() > 255) {
        return Err(NameError::TooLong(name.into()));
    }
    if name.split('/').any(|part| part == "..") {
        return Err(NameError::ParentComponent(name.into()));
    }
    let normal = name
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/");
    if normal.is_empty() {
        return Err(NameError::Empty);
    }
    if normal != name {
        return Err(NameError::NotNormal {
            name: name.into(),
            normal,
        });
    }
    if name.starts_with(RESERVED_PREFIX) {
        return Err(NameError::Reserved(name.into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_relative_paths() {
        for name in ["a", "obs/2026/file.dat", "with space.txt", ".hidden/x"] {
            assert_eq!(validate_file_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn refuses_escapes_and_non_normal_forms() {
        assert!(matches!(validate_file_name(""), Err(NameError::Empty)));
        assert!(matches!(
            validate_file_name("/etc/passwd"),
            Err(NameError::Absolute(_))
        ));
        assert!(matches!(
            validate_file_name("../x"),
            Err(NameError::ParentComponent(_))
        ));
        assert!(matches!(
            validate_file_name("a/../../x"),
            Err(NameError::ParentComponent(_))
        ));
        assert!(matches!(
            validate_file_name("a//b"),
            Err(NameError::NotNormal { .. })
        ));
        assert!(matches!(
            validate_file_name("./a"),
            Err(NameError::NotNormal { .. })
        ));
        assert!(matches!(
            validate_file_name("a/"),
            Err(NameError::NotNormal { .. })
        ));
        assert!(matches!(validate_file_name("."), Err(NameError::Empty)));
        assert!(matches!(
            validate_file_name("a\0b"),
            Err(NameError::ControlCharacter(_))
        ));
        // A refused name never puts a line break into a message.
        let refused = validate_file_name("/x\nforged line").unwrap_err();
        assert!(!refused.to_string().contains('\n'), "{refused}");
        let decomposed = "cafe\u{301}/x";
        assert_eq!(
            validate_file_name(decomposed),
            Err(NameError::NotNfc {
                name: decomposed.into(),
                nfc: "caf\u{e9}/x".into()
            })
        );
        assert_eq!(validate_file_name("caf\u{e9}/x"), Ok(()));
        assert!(matches!(
            validate_file_name(".quire-staging/x"),
            Err(NameError::Reserved(_))
        ));
    }
}
