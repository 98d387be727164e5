//! Durations in configuration: whole seconds (`3600`), `HH:MM:SS`, ISO 8601 (`PT1H`,
//! `P1D`) or unit suffixes (`90s`, `15m`, `6h`, `7d`, `1h30m`).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Parses the duration forms accepted in configuration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let invalid =
        || format!("'{text}' is not a duration; use seconds (3600), HH:MM:SS, PT1H or 1h30m");
    if let Ok(seconds) = text.parse::<f64>() {
        return if seconds >= 0.0 && seconds.is_finite() {
            Ok(Duration::from_secs_f64(seconds))
        } else {
            Err(invalid())
        };
    }
    if text.contains(':') {
        let parts: Vec<&str> = text.split(':').collect();
        if parts.len() != 3 {
            return Err(invalid());
        }
        let mut total = 0.0;
        for (part, scale) in parts.iter().zip([3600.0, 60.0, 1.0]) {
            let value: f64 = part.parse().map_err(|_| invalid())?;
            total += value * scale;
        }
        return Ok(Duration::from_secs_f64(total));
    }
    let (body, iso) = match text.strip_prefix('P').or_else(|| text.strip_prefix('p')) {
        Some(rest) => (rest.replace(['T', 't'], ""), true),
        None => (text.to_string(), false),
    };
    let mut total = 0.0;
    let mut number = String::new();
    let mut any = false;
    for c in body.chars() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let scale = match c.to_ascii_lowercase() {
            'w' => 604_800.0,
            'd' => 86_400.0,
            'h' => 3_600.0,
            'm' if iso && text.to_ascii_uppercase().find('T').is_none() => return Err(invalid()),
            'm' => 60.0,
            's' => 1.0,
            ' ' => continue,
            _ => return Err(invalid()),
        };
        let value: f64 = number.parse().map_err(|_| invalid())?;
        total += value * scale;
        number.clear();
        any = true;
    }
    if !number.is_empty() || !any {
        return Err(invalid());
    }
    Ok(Duration::from_secs_f64(total))
}

/// Serde adapter for `Duration` fields written in any accepted form.
pub mod serde_duration {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(value.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Seconds(u64),
            Fractional(f64),
            Text(String),
        }
        match Form::deserialize(deserializer)? {
            Form::Seconds(seconds) => Ok(Duration::from_secs(seconds)),
            Form::Fractional(seconds) => parse_duration(&seconds.to_string()),
            Form::Text(text) => parse_duration(&text),
        }
        .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_form() {
        let hour = Duration::from_secs(3600);
        for text in ["3600", "01:00:00", "PT1H", "1h", "60m", "PT60M", " 1h "] {
            assert_eq!(parse_duration(text), Ok(hour), "{text}");
        }
        assert_eq!(parse_duration("P1D"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        for bad in ["", "soon", "1x", "-5", "1:2", "P1M"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
