//! The rules for a peer's address and credentials as the registry receives them:
//! `url` is `http(s)://host[/path]` with no port (the port travels on its own), and
//! the authenticator is `user:password`.

use reqwest::Url;

/// Longest peer name accepted (the reference stores names in 256 characters).
pub const MAX_PEER_NAME: usize = 256;

/// Checks a peer's name: not empty, no surrounding spaces, no control characters.
pub fn check_peer_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("Librarian name must not be empty.".into());
    }
    if name.trim() != name || name.chars().any(char::is_control) {
        return Err(format!(
            "Librarian name {name:?} has surrounding spaces or control characters."
        ));
    }
    if name.chars().count() > MAX_PEER_NAME {
        return Err(format!(
            "Librarian name is longer than {MAX_PEER_NAME} characters."
        ));
    }
    Ok(())
}

/// Checks `url` and `port` and returns the base URL a client uses:
/// `scheme://host:port[/path]`, without a trailing slash.
pub fn peer_base_url(url: &str, port: i64) -> Result<String, String> {
    let port = u16::try_from(port)
        .ok()
        .filter(|port| *port != 0)
        .ok_or_else(|| format!("Librarian port {port} is not a TCP port (1 to 65535)."))?;
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "Librarian URL '{url}' has no scheme; it must start with http:// or https://."
        ));
    };
    if !matches!(scheme, "http" | "https") {
        return Err(format!(
            "Librarian URL '{url}' has the scheme '{scheme}'; use http:// or https://."
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!(
            "Librarian URL '{url}' carries credentials; give them as the authenticator."
        ));
    }
    if has_port(authority) {
        return Err(format!(
            "Librarian URL '{url}' includes a port; give the URL without it and the port \
             separately."
        ));
    }
    let mut parsed =
        Url::parse(url).map_err(|e| format!("Librarian URL '{url}' is not a URL: {e}."))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("Librarian URL '{url}' has no host."));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!(
            "Librarian URL '{url}' has a query or fragment; give scheme://host[/path] only."
        ));
    }
    parsed
        .set_port(Some(port))
        .map_err(|()| format!("Librarian URL '{url}' cannot take a port."))?;
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

/// Whether a URL authority (`host`, `host:port`, `[v6]`, `[v6]:port`) names a port.
fn has_port(authority: &str) -> bool {
    match authority.strip_prefix('[') {
        Some(bracketed) => bracketed
            .split_once(']')
            .is_some_and(|(_, after)| after.starts_with(':')),
        None => authority.contains(':'),
    }
}

/// Splits `user:password` at the first colon (a password may contain colons).
pub fn split_authenticator(authenticator: &str) -> Option<(&str, &str)> {
    authenticator
        .split_once(':')
        .filter(|(user, password)| !user.is_empty() && !password.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_a_scheme_and_no_port() {
        assert_eq!(
            peer_base_url("http://127.0.0.1", 21108).unwrap(),
            "http://127.0.0.1:21108"
        );
        assert_eq!(
            peer_base_url("https://peer.example.org/librarian/", 443).unwrap(),
            "https://peer.example.org/librarian"
        );
        assert_eq!(
            peer_base_url("http://[::1]", 8080).unwrap(),
            "http://[::1]:8080"
        );
        for bad in [
            "http://h:8080",
            "http://h:80",
            "http://[::1]:8080",
            "peer.example.org",
            "h:8080",
            "ftp://h",
            "http://",
            "http://user:pw@h",
            "http://h?x=1",
        ] {
            let error = peer_base_url(bad, 8080).unwrap_err();
            assert!(error.starts_with("Librarian URL"), "{bad}: {error}");
        }
        assert!(peer_base_url("http://h", 0).is_err());
        assert!(peer_base_url("http://h", 70000).is_err());
        assert!(peer_base_url("http://h", -1).is_err());
    }

    #[test]
    fn authenticators_split_at_the_first_colon() {
        assert_eq!(split_authenticator("a:b:c"), Some(("a", "b:c")));
        assert_eq!(split_authenticator("a"), None);
        assert_eq!(split_authenticator(":b"), None);
        assert_eq!(split_authenticator("a:"), None);
    }

    #[test]
    fn names_are_plain() {
        assert!(check_peer_name("site-b").is_ok());
        assert!(check_peer_name("").is_err());
        assert!(check_peer_name(" site-b").is_err());
        assert!(check_peer_name("a\nb").is_err());
    }
}
