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

/// The limits of the filesystem a name is stored on: how long one component (a
/// directory or file name) and a whole path may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathLimits {
    /// Longest component in bytes (`NAME_MAX`, or the filesystem's own, smaller
    /// limit).
    pub name_max: usize,
    /// Longest path in bytes, without its terminating NUL (`PATH_MAX - 1`).
    pub path_max: usize,
}

/// Why a name cannot be stored under a directory, with both lengths.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameTooLong {
    #[error(
        "the name has a component of {length} bytes ('{start}...'); this node's filesystem \
         allows at most {max} bytes per component"
    )]
    Component {
        start: String,
        length: usize,
        max: usize,
    },
    #[error(
        "the name is {length} bytes long; under the directory where it goes ({base} bytes) \
         it would make a path of {total} bytes, and this node allows at most {max}"
    )]
    Path {
        length: usize,
        base: usize,
        total: usize,
        max: usize,
    },
}

/// Checks that `name` (already valid) can be created as `<base>/<name>`: each
/// component fits `limits.name_max`, and the whole path `limits.path_max`. A path
/// the kernel would refuse is refused here, before anything is created for it.
pub fn check_path_limits(name: &str, base: usize, limits: PathLimits) -> Result<(), NameTooLong> {
    if let Some(long) = name.split('/').find(|part| part.len() > limits.name_max) {
        let mut end = 40.min(long.len());
        while !long.is_char_boundary(end) {
            end -= 1;
        }
        return Err(NameTooLong::Component {
            start: long[..end].to_string(),
            length: long.len(),
            max: limits.name_max,
        });
    }
    let total = base + 1 + name.len();
    if total > limits.path_max {
        return Err(NameTooLong::Path {
            length: name.len(),
            base,
            total,
            max: limits.path_max,
        });
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

    #[test]
    fn path_limits_count_every_component_and_the_base() {
        let limits = PathLimits {
            name_max: 255,
            path_max: 4095,
        };
        let component = "c".repeat(255);
        assert_eq!(check_path_limits(&component, 100, limits), Ok(()));
        let too_wide = format!("a/{}", "c".repeat(256));
        assert!(matches!(
            check_path_limits(&too_wide, 1, limits),
            Err(NameTooLong::Component { length: 256, .. })
        ));
        // Sixteen components of 255 bytes: a valid name, but no room for a base.
        let deep = vec![component.as_str(); 16].join("/");
        assert_eq!(deep.len(), 4095);
        assert!(matches!(
            check_path_limits(&deep, 20, limits),
            Err(NameTooLong::Path { total: 4116, .. })
        ));
        let fits = vec![component.as_str(); 15].join("/");
        assert_eq!(check_path_limits(&fits, 200, limits), Ok(()));
    }
}
