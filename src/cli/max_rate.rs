//! `--max-rate` values: a byte rate such as `6MB/s`, `500KiB/s` or `1.5GB`
//! (the `/s` may be left out), or `none` for no cap.

/// Parses a rate into bytes per second; `None` for `none` (or `0`).
pub fn parse_max_rate(text: &str) -> Result<Option<u64>, String> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("none") || trimmed == "0" {
        return Ok(None);
    }
    let per_second = trimmed
        .strip_suffix("/s")
        .or_else(|| trimmed.strip_suffix("ps"))
        .unwrap_or(trimmed)
        .trim();
    let split = per_second
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(per_second.len());
    let (number, unit) = per_second.split_at(split);
    let bad = || {
        format!(
            "'{text}' is not a rate; write e.g. 6MB/s, 500KiB/s or 1GB/s (B, kB, MB, GB, \
             KiB, MiB, GiB), or none"
        )
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let factor: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "k" | "kB" | "KB" => 1e3,
        "M" | "MB" => 1e6,
        "G" | "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let bytes = (value * factor).round();
    if !bytes.is_finite() || bytes < 1.0 {
        return Err(bad());
    }
    Ok(Some(bytes as u64))
}

/// A cap as people write it: `6.0 MB/s` (decimal units, as `--max-rate` takes).
pub fn show_max_rate(rate: Option<u64>) -> String {
    let Some(rate) = rate else {
        return "-".into();
    };
    let value = rate as f64;
    if value >= 1e9 {
        format!("{:.1} GB/s", value / 1e9)
    } else if value >= 1e6 {
        format!("{:.1} MB/s", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1} kB/s", value / 1e3)
    } else {
        format!("{rate} B/s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_people_write_them() {
        assert_eq!(parse_max_rate("6MB/s"), Ok(Some(6_000_000)));
        assert_eq!(parse_max_rate("10 MB/s"), Ok(Some(10_000_000)));
        assert_eq!(parse_max_rate("500KiB/s"), Ok(Some(512_000)));
        assert_eq!(parse_max_rate("1.5GB"), Ok(Some(1_500_000_000)));
        assert_eq!(parse_max_rate("4096"), Ok(Some(4096)));
        assert_eq!(parse_max_rate("none"), Ok(None));
        assert!(parse_max_rate("fast").is_err());
        assert!(parse_max_rate("5 parsecs").is_err());
        assert_eq!(show_max_rate(Some(6_000_000)), "6.0 MB/s");
        assert_eq!(show_max_rate(None), "-");
    }
}
