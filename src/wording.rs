//! One plural-aware wording for every count the server prints ("1 file", "2 files"), so no
//! message says "1 files" or "file(s)". A test keeps `(s)` out of the messages.

/// `n` and the noun in the right number: `count(1, "file")` → "1 file", `count(3, "file")` →
/// "3 files". Nouns whose plural is not `+s` pass it with [`count_irregular`].
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// [`count`] with an explicit plural ("1 match", "2 matches").
pub fn count_irregular(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(count(0, "file"), "0 files");
        assert_eq!(count(1, "file"), "1 file");
        assert_eq!(count(2, "checkpoint"), "2 checkpoints");
        assert_eq!(count_irregular(1, "match", "matches"), "1 match");
        assert_eq!(count_irregular(5, "match", "matches"), "5 matches");
    }

    /// No message in the source spells a count as "file(s)": every one goes through `count`.
    #[test]
    fn no_message_says_s_in_parentheses() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut bad = Vec::new();
        for e in walkdir::WalkDir::new(&root).into_iter().flatten() {
            if e.path().extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            for (i, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                // In a string literal: a word followed by `(s)` (not `http(s)`).
                let mut rest = line;
                while let Some(at) = rest.find("(s)") {
                    let before = &rest[..at];
                    let word: String = before
                        .chars()
                        .rev()
                        .take_while(|c| c.is_ascii_alphabetic())
                        .collect();
                    // A noun (not `http(s)`, not a call like `.test(s)` or `f(s)` in test code).
                    let prev = before[..before.len() - word.len()].chars().last();
                    if word.len() >= 3
                        && word != "ptth"
                        && prev != Some('.')
                        && before.contains('"')
                    {
                        bad.push(format!("{}:{}: {}", e.path().display(), i + 1, line.trim()));
                    }
                    rest = &rest[at + 3..];
                }
            }
        }
        assert!(bad.is_empty(), "counts spelt with (s):\n{}", bad.join("\n"));
    }
}
