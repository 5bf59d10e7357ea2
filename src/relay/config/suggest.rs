//! "Did you mean …?": the known name closest to a misspelt one, by edit distance.

use std::path::Path;

/// The message for `name`, unknown among `known` in the file at `path`: where it is,
/// and the known name it probably meant when one is close enough.
pub(super) fn unknown<'a>(
    what: &str,
    name: &str,
    path: &Path,
    known: impl IntoIterator<Item = &'a str>,
) -> String {
    let mut message = format!("is not {what} (in {})", path.display());
    if let Some(close) = closest(name, known) {
        message.push_str(&format!("; did you mean `{close}`?"));
    }
    message
}

/// The name of `known` nearest to `name`, if within a third of its length (at least 1,
/// at most 3 edits): a typo, not another word.
fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    known
        .into_iter()
        .map(|candidate| (distance(name, candidate), candidate))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance with adjacent transpositions (optimal string alignment), by
/// characters: `amqp_ulr` is one edit from `amqp_url`.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows: the one before the previous (transpositions), the previous, this one.
    let mut before = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut row = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        row[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (previous[j] + 1)
                .min(row[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(before[j - 2] + 1);
            }
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut row);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::config::{Overrides, RelayConfig};

    #[test]
    fn typos_are_one_or_two_edits() {
        assert_eq!(distance("amqp_ulr", "amqp_url"), 1);
        assert_eq!(distance("lisen", "listen"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        let keys = ["amqp_url", "listen", "data_dir", "dedup"];
        assert_eq!(closest("amqp_ulr", keys), Some("amqp_url"));
        assert_eq!(closest("datadir", keys), Some("data_dir"));
        assert_eq!(closest("secret", ["mode", "secrets"]), Some("secrets"));
        // Another word altogether: no suggestion.
        assert_eq!(closest("password", keys), None);
    }

    #[test]
    fn a_typo_is_named_with_its_file_and_the_key_it_meant() {
        let dir = std::env::temp_dir().join(format!("powens-relay-typo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("relay.toml");
        std::fs::write(
            &path,
            "amqp_ulr = \"amqp://h/%2f\"\n[domains.\"a.biapi.pro\"]\nmode = \"forward\"\nsecret = []\n",
        )
        .unwrap();
        let overrides = Overrides::new().with_config(path.clone());
        let err = RelayConfig::load(&overrides).unwrap_err().to_string();
        let file = path.display();
        assert!(
            err.contains(&format!(
                "amqp_ulr: is not a configuration key (in {file}); did you mean `amqp_url`?"
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "domains.\"a.biapi.pro\".secret: is not a key of a domain (in {file}); did you \
                 mean `secrets`?"
            )),
            "{err}"
        );
        // Said once, not again as a malformed domain table.
        assert!(!err.contains("mode and secrets only"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
