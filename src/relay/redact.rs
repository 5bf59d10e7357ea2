//! How a URL from the configuration is shown (errors, logs, `Debug`): without its
//! credentials. One place for every URL: the broker's and the callback store's.

/// Whether the URL `text` spells out a (non-empty) password in its user information.
/// Read from the text itself: a parsed AMQP URI holds the default `guest` password.
///
/// A list of URLs separated by commas (the nodes of a cluster) has one if any of them
/// has.
pub(crate) fn url_has_password(text: &str) -> bool {
    // The whole text too: a password with a raw comma in it is still a password.
    one_url_has_password(text) || (text.contains(',') && text.split(',').any(one_url_has_password))
}

fn one_url_has_password(text: &str) -> bool {
    text.split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?', '#']).next())
        .and_then(|authority| authority.rsplit_once('@'))
        .is_some_and(|(userinfo, _)| userinfo.split_once(':').is_some_and(|(_, p)| !p.is_empty()))
}

/// The one way a URL from the configuration is printed (errors, logs, `Debug`): its
/// scheme, host and port, and its path only when it is plainly a name; never the user,
/// the password, the query or the fragment, which are replaced by `…`. Text that does not
/// even look like `scheme://host` prints as `scheme://…`, or `…`: nothing past the
/// scheme of a value that cannot be read is ever shown.
///
pub(crate) fn redact_url(text: &str) -> String {
    const HIDDEN: &str = "…";
    let Some((scheme, rest)) = text.split_once("://") else {
        return HIDDEN.to_owned();
    };
    let plain_scheme = !scheme.is_empty()
        && scheme.len() <= 16
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !plain_scheme {
        return HIDDEN.to_owned();
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(end);
    // The host follows the last `@`: a password may hold one.
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    // Commas: the sentinels of a `redis+sentinel://` URL. An `@` after the host part
    // (before the next URL of a list) means a password held a `/`, `?` or `#` and cut
    // the host part early: none of it is shown.
    let plain_host = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[],".contains(&b))
        && !after.split(',').next().unwrap_or_default().contains('@');
    if !plain_host {
        return format!("{scheme}://{HIDDEN}");
    }
    let path_end = after.find(['?', '#']).unwrap_or(after.len());
    let (path, query) = after.split_at(path_end);
    let plain_path = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/%-_.~".contains(&b));
    let path = if plain_path { path } else { "/…" };
    let query = if query.is_empty() { "" } else { "?…" };
    format!("{scheme}://{host}{path}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_credentials() {
        assert_eq!(
            redact_url("amqp://guest:s3cr3t@10.0.0.7:5672/%2f"),
            "amqp://10.0.0.7:5672/%2f"
        );
        assert_eq!(
            redact_url("redis://:s3cr3t@cache:6379/0?password=x"),
            "redis://cache:6379/0?…"
        );
        assert_eq!(
            redact_url("amqp://h:1/%2f,amqp://u:s3cr3t@h2/%2f"),
            "amqp://h:1/…"
        );
        assert_eq!(redact_url("amqp//u:s3cr3t@h"), "…");
        assert_eq!(
            redact_url("redis+sentinel://:s3cr3t@s1:26379,s2:26379/mymaster?wait_replicas=1"),
            "redis+sentinel://s1:26379,s2:26379/mymaster?…"
        );
        // A password with a raw `/`, `?` or `#` in it ends the host part early.
        for url in [
            "amqp://u:pa/ss@h/%2f",
            "redis://:s3?cr3t@h:6379",
            "amqp://u:a#b@h/",
        ] {
            assert_eq!(
                redact_url(url),
                url.split("://").next().unwrap().to_owned() + "://…"
            );
        }
    }
}
