//! Names being placed in a store right now. Whatever puts bytes at a new name
//! (commit, batch upload, drop-box) claims the name first and keeps the claim until
//! the name is recorded or taken back.
//!
//! Invariant: no two claims nest (equal, or one a parent path of the other). So a
//! directory being renamed into a store never receives another upload's file
//! before its record decides which of them stays, and a directory left over by a
//! failed placement is removed only while no claimed name lies under it.
//! Claiming never waits: a name that nests with a claimed one is refused, and its
//! caller answers "busy, try again".

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

/// Who holds a claim, for the message that refuses another.
pub type Holder = &'static str;

/// The claimed names of the node.
#[derive(Debug, Default)]
pub struct NameClaims {
    held: Mutex<BTreeMap<String, Holder>>,
}

/// Claims taken together, released when dropped.
#[derive(Debug)]
pub struct Claim {
    claims: Arc<NameClaims>,
    names: Vec<String>,
}

/// Why a name could not be claimed: the claimed (or earlier requested) name it
/// nests with, and who holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    pub other: String,
    pub by: Holder,
}

impl NameClaims {
    /// Claims each of `names` for `holder` that nests with no claimed name and no
    /// earlier name of the call; the others get `Busy`. The claims last as long as
    /// the returned `Claim`.
    pub fn claim(
        self: &Arc<Self>,
        names: &[&str],
        holder: Holder,
    ) -> (Claim, Vec<Result<(), Busy>>) {
        let mut held = self.held.lock().expect("claims lock");
        let mut taken = Vec::new();
        let answers = names
            .iter()
            .map(|name| match nesting(&held, name) {
                Some((other, by)) => Err(Busy {
                    other: other.to_string(),
                    by,
                }),
                None => {
                    held.insert(name.to_string(), holder);
                    taken.push(name.to_string());
                    Ok(())
                }
            })
            .collect();
        let claim = Claim {
            claims: self.clone(),
            names: taken,
        };
        (claim, answers)
    }

    /// Runs `work` while no name can be claimed, telling it whether a name claimed
    /// by others than `mine` lies under `directory` (a relative path). For
    /// removing a directory that nothing claimed needs: a placement claims its name
    /// before it creates the directories above it.
    pub fn while_none_under<T>(
        &self,
        directory: &str,
        mine: Option<&Claim>,
        work: impl FnOnce(bool) -> T,
    ) -> T {
        let held = self.held.lock().expect("claims lock");
        let under = format!("{directory}/");
        let others = held
            .range::<str, _>((Bound::Included(under.as_str()), Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(&under))
            .any(|(key, _)| !mine.is_some_and(|claim| claim.holds(key)));
        work(others)
    }
}

impl Claim {
    /// Whether `name` is held by this claim.
    pub fn holds(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut held = self.claims.held.lock().expect("claims lock");
        for name in &self.names {
            held.remove(name);
        }
    }
}

/// The claimed name that `name` nests with: itself, a parent path, or a name
/// under it.
fn nesting<'a>(held: &'a BTreeMap<String, Holder>, name: &str) -> Option<(&'a str, Holder)> {
    if let Some((key, by)) = held.get_key_value(name) {
        return Some((key, *by));
    }
    for (end, _) in name.match_indices('/') {
        if let Some((key, by)) = held.get_key_value(&name[..end]) {
            return Some((key, *by));
        }
    }
    first_under(held, name)
}

/// The first claimed name under the directory `name`.
fn first_under<'a>(held: &'a BTreeMap<String, Holder>, name: &str) -> Option<(&'a str, Holder)> {
    let under = format!("{name}/");
    held.range::<str, _>((Bound::Included(under.as_str()), Bound::Unbounded))
        .next()
        .filter(|(key, _)| key.starts_with(&under))
        .map(|(key, by)| (key.as_str(), *by))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_names_are_refused_until_released() {
        let claims = Arc::new(NameClaims::default());
        let (first, answers) = claims.claim(&["d", "e/f"], "an upload");
        assert_eq!(answers, vec![Ok(()), Ok(())]);
        let (_second, answers) = claims.claim(&["d/x", "e", "e/f", "de", "f/g"], "a drop-box");
        let busy = |other: &str| {
            Err(Busy {
                other: other.into(),
                by: "an upload",
            })
        };
        assert_eq!(
            answers,
            vec![busy("d"), busy("e/f"), busy("e/f"), Ok(()), Ok(())]
        );
        assert!(claims.while_none_under("e", None, |under| under));
        assert!(!claims.while_none_under("e", Some(&first), |under| under));
        drop(first);
        let (_third, answers) = claims.claim(&["d/x", "d/x/y"], "a commit");
        assert_eq!(answers[0], Ok(()));
        assert_eq!(
            answers[1],
            Err(Busy {
                other: "d/x".into(),
                by: "a commit"
            })
        );
    }
}
