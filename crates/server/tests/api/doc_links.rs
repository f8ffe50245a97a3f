//! The repository explains itself: every reference its text makes to one of its Markdown
//! documents with an anchor (a path under `docs/`, `README.md`, `ARCHITECTURE.md`, …, or a
//! relative link inside a document) names a file that exists and a heading that file has,
//! and no text cites a section by number with the section sign, which leads to no file of
//! the repository.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

/// The section sign (U+00A7), spelt out so that this file does not hold one.
const SECTION_SIGN: char = '\u{a7}';

/// Directories whose files are not the repository's own words: build output, git's store,
/// Schemathesis's cache, and the vendored Swagger UI.
const SKIPPED_DIRS: [&str; 4] = ["target", ".git", ".schemathesis", "crates/server/assets"];

/// The repository's root.
fn root() -> PathBuf {
    lexically_normal(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// A path with its `.` and `..` components resolved, without touching the file system.
fn lexically_normal(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
}

/// Every text file of the repository, by its path from the root, with its text. A file that
/// is not UTF-8 or holds a NUL byte (a database file, say) is not text.
fn text_files() -> Vec<(PathBuf, String)> {
    let root = root();
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read a directory of the repository") {
            let path = entry.expect("a directory entry").path();
            let relative = path
                .strip_prefix(&root)
                .expect("under the root")
                .to_path_buf();
            if path.is_dir() {
                if !SKIPPED_DIRS
                    .iter()
                    .any(|skipped| relative == Path::new(skipped))
                {
                    dirs.push(path);
                }
            } else if let Ok(text) = String::from_utf8(std::fs::read(&path).expect("read a file"))
                && !text.contains('\0')
            {
                files.push((relative, text));
            }
        }
    }
    files.sort();
    files
}

/// The anchor GitHub gives a heading: lower case, every character but letters, digits,
/// spaces, `-` and `_` dropped, spaces made `-`.
fn github_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown document's headings, in order; a repeated heading gets `-1`,
/// `-2`, … as on GitHub. Lines inside fenced code blocks are no headings.
fn anchors(markdown: &str) -> Vec<String> {
    let mut anchors = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut in_code = false;
    for line in markdown.lines() {
        let fence = line.trim_start();
        if fence.starts_with("```") || fence.starts_with("~~~") {
            in_code = !in_code;
            continue;
        }
        let level = line.chars().take_while(|c| *c == '#').count();
        let Some(text) = line[level..].strip_prefix(' ') else {
            continue;
        };
        if in_code || !(1..=6).contains(&level) {
            continue;
        }
        let anchor = github_anchor(text);
        let count = seen.entry(anchor.clone()).or_default();
        anchors.push(match *count {
            0 => anchor,
            n => format!("{anchor}-{n}"),
        });
        *count += 1;
    }
    anchors
}

/// One reference to a Markdown document found in a file.
#[derive(Debug)]
struct Reference {
    /// Where it was found, for the failure message.
    at: String,
    /// The document, from the root.
    document: PathBuf,
    /// The heading's anchor, if it names one.
    anchor: Option<String>,
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')
}

/// The references `text` (the file at `file`) makes to Markdown documents: each `NAME.md`,
/// with its path and `#anchor`, that names an anchor, lies under `docs/`, or is the target
/// of a Markdown link. A link in a Markdown document is relative to its directory, and so
/// is `](#anchor)` to the document itself; every other path is from the root.
fn references(file: &Path, text: &str) -> Vec<Reference> {
    let in_markdown = file.extension().is_some_and(|extension| extension == "md");
    let directory = file.parent().unwrap_or(Path::new(""));
    let anchor_after = |rest: &str| {
        let anchor: String = rest
            .strip_prefix('#')?
            .chars()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '_'))
            .collect();
        (!anchor.is_empty()).then_some(anchor)
    };
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let at = format!("{}:{}", file.display(), number + 1);
        for (index, _) in line.match_indices(".md") {
            let rest = &line[index + 3..];
            if rest.starts_with(|c: char| c.is_alphanumeric()) {
                continue;
            }
            let start = line[..index]
                .char_indices()
                .rev()
                .take_while(|(_, c)| is_path_char(*c))
                .last()
                .map_or(index, |(start, _)| start);
            let path = &line[start..index + 3];
            if path == ".md" || path.ends_with("/.md") || path.starts_with("//") {
                continue;
            }
            let linked = in_markdown && line[..start].ends_with("](");
            let anchor = anchor_after(rest);
            if anchor.is_none() && !linked && !path.starts_with("docs/") {
                continue;
            }
            let document = if linked {
                directory.join(path)
            } else {
                PathBuf::from(path)
            };
            found.push(Reference {
                at: at.clone(),
                document: lexically_normal(&document),
                anchor,
            });
        }
        if in_markdown {
            for (index, _) in line.match_indices("](#") {
                found.push(Reference {
                    at: at.clone(),
                    document: file.to_path_buf(),
                    anchor: anchor_after(&line[index + 2..]),
                });
            }
        }
    }
    found
}

#[test]
fn every_reference_to_a_document_names_a_file_and_a_heading_it_has() {
    let root = root();
    let mut documents: HashMap<PathBuf, Option<Vec<String>>> = HashMap::new();
    let mut problems = Vec::new();
    let mut checked = 0;
    for (file, text) in text_files() {
        for reference in references(&file, &text) {
            checked += 1;
            let anchors = documents
                .entry(reference.document.clone())
                .or_insert_with(|| {
                    std::fs::read_to_string(root.join(&reference.document))
                        .ok()
                        .map(|markdown| anchors(&markdown))
                });
            match (anchors, &reference.anchor) {
                (None, _) => problems.push(format!(
                    "{}: {} does not exist",
                    reference.at,
                    reference.document.display()
                )),
                (Some(anchors), Some(anchor)) if !anchors.contains(anchor) => {
                    problems.push(format!(
                        "{}: {} has no heading with the anchor #{anchor}",
                        reference.at,
                        reference.document.display()
                    ));
                }
                _ => {}
            }
        }
    }
    assert!(checked > 0, "no reference to a document was found at all");
    assert!(
        problems.is_empty(),
        "references that lead nowhere:\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_text_cites_a_section_by_number() {
    let cited: Vec<String> = text_files()
        .into_iter()
        .flat_map(|(file, text)| {
            text.lines()
                .enumerate()
                .filter(|(_, line)| line.contains(SECTION_SIGN))
                .map(|(number, line)| format!("{}:{}: {}", file.display(), number + 1, line.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        cited.is_empty(),
        "a section number after the section sign leads to no file of the repository; cite \
         docs/reference.md by anchor instead:\n{}",
        cited.join("\n")
    );
}

#[test]
fn anchors_are_made_as_github_makes_them() {
    let markdown = "# contactd\n## 6. Contact endpoints\n### `contactd import`\n\
                    ## Bulk: batch writes, import and export\n## Email\n```sh\n# not a heading\n```\n\
                    ## Email\n#not a heading either\n";
    assert_eq!(
        anchors(markdown),
        [
            "contactd",
            "6-contact-endpoints",
            "contactd-import",
            "bulk-batch-writes-import-and-export",
            "email",
            "email-1",
        ]
    );
}
