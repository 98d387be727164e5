//! Which paths of a drop-box are ingested: not an `ignore` pattern, not inside the
//! excluded `move_to` directory.
//!
//! A pattern without `/` matches any single component of the relative path (so
//! `.*` skips hidden files and everything in hidden directories); a pattern with
//! `/` matches the whole relative path. `*` matches any run of characters other
//! than `/`, `?` any one character other than `/`; everything else matches itself.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// The ingest filter of one drop-box.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Patterns matched against each component.
    component_patterns: Vec<Vec<u8>>,
    /// Patterns matched against the whole relative path.
    path_patterns: Vec<Vec<u8>>,
    /// A directory inside the drop-box that is never ingested (`move_to`).
    excluded: Option<PathBuf>,
}

impl Filter {
    /// A filter for `patterns`, excluding `excluded` (an absolute path) entirely.
    pub fn new(patterns: &[String], excluded: Option<PathBuf>) -> Filter {
        let (path_patterns, component_patterns) = patterns
            .iter()
            .map(|p| p.trim_matches('/').as_bytes().to_vec())
            .partition(|p| p.contains(&b'/'));
        Filter {
            component_patterns,
            path_patterns,
            excluded,
        }
    }

    /// Whether the file or directory at `absolute` (relative to the drop-box:
    /// `relative`) may hold files to ingest.
    pub fn accepts(&self, absolute: &Path, relative: &Path) -> bool {
        if self
            .excluded
            .as_ref()
            .is_some_and(|excluded| absolute.starts_with(excluded))
        {
            return false;
        }
        let whole = relative.as_os_str().as_bytes();
        for component in relative.components() {
            let Component::Normal(name) = component else {
                return false;
            };
            let name = name.as_bytes();
            if self.component_patterns.iter().any(|p| glob(p, name)) {
                return false;
            }
        }
        !self.path_patterns.iter().any(|p| glob(p, whole))
    }
}

/// Whether `text` matches `pattern`, both UTF-8 (`*` and `?` never match `/`;
/// `?` matches one character, whatever its length in bytes).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative matching with one backtrack point for the last `*`.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(b'?') if text[t] != b'/' => {
                p += 1;
                t = next_char(text, t);
            }
            Some(&c) if c != b'*' && c != b'?' && c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) if text[star_t] != b'/' => {
                    let resume = next_char(text, star_t);
                    p = star_p + 1;
                    t = resume;
                    star = Some((star_p, resume));
                }
                _ => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

/// The index of the character after the one starting at `at`.
fn next_char(text: &[u8], at: usize) -> usize {
    let mut next = at + 1;
    while next < text.len() && text[next] & 0b1100_0000 == 0b1000_0000 {
        next += 1;
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn matches(pattern: &str, text: &str) -> bool {
        glob(pattern.as_bytes(), text.as_bytes())
    }

    #[test]
    fn globs_match_within_one_component() {
        assert!(matches("*.part", "a.part"));
        assert!(matches("*.part", ".part"));
        assert!(!matches("*.part", "a.partial"));
        assert!(matches(".*", ".hidden"));
        assert!(!matches(".*", "visible"));
        assert!(matches("a?c", "abc"));
        assert!(matches("*~", "notes~"));
        assert!(matches("x/*/z", "x/y/z"));
        assert!(!matches("x/*", "x/y/z"));
        assert!(matches("*a*b*", "xxaxxbxx"));
        assert!(!matches("*a*b", "xxaxxbxxc"));
        assert!(matches("?.dat", "é.dat"), "? is one character");
        assert!(matches("*é", "caféé"));
    }

    #[test]
    fn the_default_list_skips_partial_and_hidden_files_and_move_to() {
        let text = "[[dropbox]]\npath = \"/drop\"\nprefix = \"\"\nafter_ingest = \"delete\"\n";
        let ignore = Config::from_toml(text).unwrap().dropbox[0].ignore.clone();
        let filter = Filter::new(&ignore, Some(PathBuf::from("/drop/done")));
        let accepts = |relative: &str| {
            filter.accepts(&Path::new("/drop").join(relative), Path::new(relative))
        };
        assert!(accepts("obs/2026/frame-1.fits"));
        assert!(!accepts("obs/frame-1.fits.part"));
        assert!(!accepts(".frame-1.fits.swx"));
        assert!(!accepts(".staging/frame-1.fits"));
        assert!(!accepts("notes.txt~"));
        assert!(!accepts("done/obs/frame-1.fits"));
        let custom = Filter::new(&["calibration/scratch/*".to_string()], None);
        assert!(!custom.accepts(
            Path::new("/d/calibration/scratch/x"),
            Path::new("calibration/scratch/x")
        ));
        assert!(custom.accepts(Path::new("/d/.x"), Path::new(".x")));
    }
}
