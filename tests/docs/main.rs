//! The documentation checked against what a reader can see and run: no issue numbers,
//! relative links that lead somewhere, Powens' and TeaL's documentation linked, the
//! README's receiver the example it claims to be, every metric named the way
//! `/metrics` serves it, and the README's shell blocks run as written.
//!
//! Not part of the published package: it reads the repository's images and charts.
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

#[cfg(feature = "relay")]
mod metrics;
#[cfg(feature = "relay")]
mod readme_blocks;

use std::path::{Path, PathBuf};

/// The repository's root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The README and every page of docs/, with their paths.
pub fn pages() -> Vec<(PathBuf, String)> {
    let mut paths = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths.push(root().join("fuzz/README.md"));
    paths
        .into_iter()
        .filter(|path| path.exists())
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            (path, text)
        })
        .collect()
}

/// The fenced blocks of `markdown` whose info string is `lang`, in order.
pub fn blocks(markdown: &str, lang: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(info)) if info.trim() == lang => current = Some(String::new()),
            (Some(_), Some("")) => found.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            _ => {}
        }
    }
    found
}

/// "issue 12", "issues 3 and 4", "issue #7": references a reader cannot follow.
fn issue_numbers(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut found = Vec::new();
    for (at, _) in lower.match_indices("issue") {
        let rest = lower[at + "issue".len()..].trim_start_matches('s');
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        let rest = rest.strip_prefix('#').unwrap_or(rest);
        if rest.starts_with(|c: char| c.is_ascii_digit()) {
            let end = (at + 40).min(lower.len());
            found.push(text.get(at..end).unwrap_or(&text[at..]).to_owned());
        }
    }
    found
}

#[test]
fn no_page_cites_an_issue_number_or_a_machine_the_reader_cannot_see() {
    assert_eq!(issue_numbers("goal (issue 12)").len(), 1);
    assert_eq!(issue_numbers("issues #3 and 4; an issue of taste").len(), 1);
    for (path, text) in pages() {
        let found = issue_numbers(&text);
        assert!(found.is_empty(), "{}: {found:?}", path.display());
        assert!(
            !text.contains("the machine this was developed on"),
            "{}",
            path.display()
        );
    }
}

/// The targets of the inline links and images of `markdown`: `](target)`.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            if let Some(end) = rest.find(')') {
                targets.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
    }
    targets
}

#[test]
fn relative_links_lead_to_files_that_exist() {
    let mut checked = 0;
    for (path, text) in pages() {
        // Links split over two lines ("[the\njournal](…)") are joined first.
        let joined = text.replace("]\n(", "](");
        for target in link_targets(&joined) {
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
                || target.starts_with('#')
            {
                continue;
            }
            let file = target.split('#').next().unwrap();
            let resolved = path.parent().unwrap().join(file);
            assert!(
                resolved.exists(),
                "{}: the link to {target} leads nowhere ({})",
                path.display(),
                resolved.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} relative links found");
}

#[test]
fn powens_and_teal_documentation_are_linked() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let teal = std::fs::read_to_string(root().join("docs/teal.md")).unwrap();
    for text in [&readme, &teal] {
        assert!(
            text.contains("(https://docs.powens.com/documentation/integration-guides/webhooks)")
        );
        assert!(text.contains("(https://teal.teapots.fr/)"));
    }
}

#[test]
fn the_readme_receiver_is_the_example_word_for_word() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let example = std::fs::read_to_string(root().join("examples/axum_receiver.rs")).unwrap();
    let rust = blocks(&readme, "rust");
    assert_eq!(rust.len(), 1, "one rust block in the README");
    assert_eq!(
        rust[0], example,
        "the README's receiver and examples/axum_receiver.rs differ: copy one to the other"
    );
    // A complete program: a main, its secret from the environment, and the README says
    // which dependencies it needs.
    assert!(example.contains("async fn main()") && example.contains("Secret::from_env"));
    let toml = blocks(&readme, "toml").join("");
    for dependency in ["powens-webhooks = ", "axum = ", "tokio = "] {
        assert!(toml.contains(dependency), "{dependency} not in {toml}");
    }
}

#[test]
fn the_readme_does_not_send_readers_to_a_docs_rs_page_that_does_not_exist_yet() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(!readme.contains("front page on\ndocs.rs)"));
    assert!(!readme.contains("front page on docs.rs"));
}
