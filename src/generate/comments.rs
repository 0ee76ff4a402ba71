//! Prompt comments: `// @builder <request>` (also `/* … */`, JSX `{/* … */}`, HTML `<!-- … -->`,
//! CSS `/* … */`, `# …`) turn any editor's code-action menu into a generation prompt.

/// The request of a prompt comment on `line`, if there is one.
pub fn prompt_in_line(line: &str) -> Option<String> {
    let at = line.find("@builder")?;
    let before = line[..at].trim_end();
    let opener_ok = ["//", "/*", "{/*", "<!--", "#", "*"]
        .iter()
        .any(|o| before.ends_with(o));
    if !opener_ok {
        return None;
    }
    let rest = &line[at + "@builder".len()..];
    // `@builderX` is some other word.
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) && !rest.starts_with(':') {
        return None;
    }
    let mut req = rest.trim_start_matches(':').trim();
    for closer in ["*/}", "*/", "-->"] {
        if let Some(stripped) = req.strip_suffix(closer) {
            req = stripped.trim_end();
            break;
        }
    }
    let req = req.trim();
    (!req.is_empty()).then(|| req.to_string())
}

#[cfg(test)]
mod tests {
    use super::prompt_in_line;

    #[test]
    fn every_comment_style() {
        let cases = [
            ("// @builder make the hero blue", Some("make the hero blue")),
            (
                "  const a = 1; // @builder: rename this",
                Some("rename this"),
            ),
            ("/* @builder add a footer */", Some("add a footer")),
            (
                "      {/* @builder add a pricing table */}",
                Some("add a pricing table"),
            ),
            (
                "<!-- @builder add a meta description -->",
                Some("add a meta description"),
            ),
            ("  /* @builder dark background */", Some("dark background")),
            ("# @builder document setup", Some("document setup")),
            (
                " * @builder inside a block comment",
                Some("inside a block comment"),
            ),
            ("// @builder", None),
            ("// @builder   */", None),
            ("const s = '@builder not a comment';", None),
            ("// @builderish thing", None),
            ("email me @builder", None),
        ];
        for (line, want) in cases {
            assert_eq!(prompt_in_line(line).as_deref(), want, "{line}");
        }
    }
}
