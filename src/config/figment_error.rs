//! Tells a figment error the way an operator wrote the setting: `stores[0].size` in
//! the file, `QUIRE_MAX_SEARCH_RESULTS` in the environment, never figment's
//! `default.` profile prefix; an unknown key gets the closest known one.

use figment::error::Kind;

/// How alike (Jaro-Winkler, 0 to 1) a known key must be to an unknown one to be
/// offered in its place.
const SUGGESTION_SIMILARITY: f64 = 0.8;

/// One line per error of `error`.
pub fn describe(error: figment::Error) -> String {
    let lines: Vec<String> = error.into_iter().map(|e| describe_one(&e)).collect();
    lines.join("; ")
}

fn describe_one(error: &figment::Error) -> String {
    let problem = match &error.kind {
        Kind::UnknownField(found, known) => unknown_key(found, known),
        Kind::UnknownVariant(found, known) => format!(
            "'{found}' is not one of {}",
            known
                .iter()
                .map(|k| format!("\"{k}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    };
    let Some(metadata) = &error.metadata else {
        return match error.path.is_empty() {
            true => problem,
            false => format!("`{}`: {problem}", key_path(&error.path)),
        };
    };
    if metadata.name.contains("environment variable") {
        let keys: Vec<&str> = error.path.iter().map(String::as_str).collect();
        let profile = figment::Profile::Default;
        let variable = format!("QUIRE_{}", metadata.interpolate(&profile, &keys));
        return format!("{variable}: {problem}");
    }
    let place = match &metadata.source {
        Some(source) => format!(" in {source}"),
        None => String::new(),
    };
    if error.path.is_empty() {
        format!("{problem}{place}")
    } else {
        format!("`{}`{place}: {problem}", key_path(&error.path))
    }
}

/// `["stores", "0", "size"]` as `stores[0].size`.
fn key_path(path: &[String]) -> String {
    let mut text = String::new();
    for part in path {
        if part.chars().all(|c| c.is_ascii_digit()) && !text.is_empty() {
            text.push_str(&format!("[{part}]"));
        } else {
            if !text.is_empty() {
                text.push('.');
            }
            text.push_str(part);
        }
    }
    text
}

fn unknown_key(found: &str, known: &[&str]) -> String {
    let closest = known
        .iter()
        .map(|key| (strsim::jaro_winkler(found, key), *key))
        .filter(|(similarity, _)| *similarity >= SUGGESTION_SIMILARITY)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match closest {
        Some((_, key)) => format!("unknown key; did you mean `{key}`?"),
        None => format!("unknown key; the keys here are {}", known.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_as_written() {
        let path = |parts: &[&str]| parts.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        assert_eq!(key_path(&path(&["stores", "0", "size"])), "stores[0].size");
        assert_eq!(key_path(&path(&["listen"])), "listen");
    }

    #[test]
    fn a_near_miss_gets_a_suggestion_and_a_far_one_the_list() {
        let known = ["listen", "data_dir", "max_search_results"];
        assert_eq!(
            unknown_key("max_search_result", &known),
            "unknown key; did you mean `max_search_results`?"
        );
        assert_eq!(
            unknown_key("colour", &known),
            "unknown key; the keys here are listen, data_dir, max_search_results"
        );
    }
}
