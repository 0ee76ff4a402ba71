//! Tag recognition: the tag names, which of them mean something in each mode, and what the
//! bytes at a `<` start (text, an opening with its `path`, a closing, or "need more input").

use super::MAX_TAG;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Name {
    File,
    Edit,
    Search,
    Replace,
    Package,
    Packages,
    Command,
    Explanation,
}

const NAMES: [(&[u8], Name); 8] = [
    (b"file", Name::File),
    (b"edit", Name::Edit),
    (b"search", Name::Search),
    (b"replace", Name::Replace),
    (b"package", Name::Package),
    (b"packages", Name::Packages),
    (b"command", Name::Command),
    (b"explanation", Name::Explanation),
];
const LONGEST_NAME: usize = 11;

fn lookup(name: &[u8]) -> Option<Name> {
    NAMES.iter().find(|(s, _)| *s == name).map(|&(_, n)| n)
}

/// Where text between tags goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Mode {
    Outside,
    File,
    EditBody,
    EditSearch,
    EditReplace,
    Small(Name),
}

impl Mode {
    /// Openings that mean something here; any other `<…` is plain text.
    pub(super) fn opens(self, n: Name) -> bool {
        match self {
            Mode::Outside => !matches!(n, Name::Search | Name::Replace),
            Mode::EditBody => matches!(n, Name::File | Name::Edit | Name::Search | Name::Replace),
            _ => matches!(n, Name::File | Name::Edit),
        }
    }

    pub(super) fn closes(self, n: Name) -> bool {
        match self {
            Mode::Outside => false,
            Mode::File => n == Name::File,
            Mode::EditBody => n == Name::Edit,
            Mode::EditSearch => matches!(n, Name::Search | Name::Edit),
            Mode::EditReplace => matches!(n, Name::Replace | Name::Edit),
            Mode::Small(k) => n == k,
        }
    }
}

/// What sits at a `<`.
#[derive(Debug)]
pub(super) enum Step {
    Text,
    /// Cannot tell before more input arrives.
    More,
    Open {
        name: Name,
        path: Option<(usize, usize)>,
        end: usize,
    },
    Close {
        name: Name,
        end: usize,
    },
}

/// Decides what the `<` at `b[lt]` starts in `mode`. Returns `More` only when the answer
/// depends on bytes not yet seen, so chunking never changes the outcome.
pub(super) fn classify(b: &[u8], lt: usize, eof: bool, mode: Mode) -> Step {
    let need_more = if eof { Step::Text } else { Step::More };
    let mut j = lt + 1;
    let closing = match b.get(j) {
        None => return need_more,
        Some(b'/') => {
            j += 1;
            true
        }
        Some(_) => false,
    };
    let name_start = j;
    while j < b.len() && b[j].is_ascii_lowercase() && j - name_start <= LONGEST_NAME {
        j += 1;
    }
    let name = &b[name_start..j];
    if j == b.len() {
        if eof {
            return Step::Text;
        }
        let possible = NAMES.iter().any(|&(s, n)| {
            s.starts_with(name)
                && if closing {
                    mode.closes(n)
                } else {
                    mode.opens(n)
                }
        });
        return if possible { Step::More } else { Step::Text };
    }
    let Some(n) = lookup(name) else {
        return Step::Text;
    };

    if closing {
        if !mode.closes(n) {
            return Step::Text;
        }
        while j < b.len() && b[j].is_ascii_whitespace() && j - lt < MAX_TAG {
            j += 1;
        }
        return match b.get(j) {
            Some(b'>') => Step::Close {
                name: n,
                end: j + 1,
            },
            None if j - lt < MAX_TAG => need_more,
            _ => Step::Text,
        };
    }

    if !mode.opens(n) {
        return Step::Text;
    }
    let needs_path = matches!(n, Name::File | Name::Edit);
    let gt = match b[j] {
        b'>' if !needs_path => j,
        c if c.is_ascii_whitespace() => match find_tag_end(b, lt, j, eof) {
            Ok(gt) => gt,
            Err(step) => return step,
        },
        _ => return Step::Text,
    };
    let path = if needs_path {
        // An empty `path=""` is still a block: the apply step reports it as an unsafe path
        // instead of it vanishing into prose.
        match find_attr(b, j, gt, b"path") {
            Some(r) => Some(r),
            None => return Step::Text,
        }
    } else {
        None
    };
    let mut end = gt + 1;
    if matches!(n, Name::File | Name::Search | Name::Replace) {
        // One newline right after the tag belongs to the tag, not the content.
        match b.get(end) {
            None if !eof => return Step::More,
            Some(b'\n') => end += 1,
            Some(b'\r') => match b.get(end + 1) {
                None if !eof => return Step::More,
                Some(b'\n') => end += 2,
                _ => {}
            },
            _ => {}
        }
    }
    Step::Open { name: n, path, end }
}

/// Finds the `>` ending an opening tag whose attributes start at `from`; `>` inside a
/// quoted value does not count, a bare `<` or `/>` means it is not one of our tags.
fn find_tag_end(b: &[u8], lt: usize, from: usize, eof: bool) -> Result<usize, Step> {
    let mut quote: Option<u8> = None;
    let mut after_eq = false;
    let mut k = from;
    while k < b.len() {
        if k - lt >= MAX_TAG {
            return Err(Step::Text);
        }
        let c = b[k];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
        } else if after_eq && (c == b'"' || c == b'\'') {
            quote = Some(c);
            after_eq = false;
        } else if c == b'>' {
            return if b[k - 1] == b'/' {
                Err(Step::Text)
            } else {
                Ok(k)
            };
        } else if c == b'<' {
            return Err(Step::Text);
        } else if c == b'=' {
            after_eq = true;
        } else if !c.is_ascii_whitespace() {
            after_eq = false;
        }
        k += 1;
    }
    Err(if eof { Step::Text } else { Step::More })
}

/// Byte range of attribute `want`'s value within `b[from..to]` (names compared without
/// case); quotes `"`/`'` or an unquoted word.
pub(super) fn find_attr(b: &[u8], from: usize, to: usize, want: &[u8]) -> Option<(usize, usize)> {
    let mut k = from;
    while k < to {
        while k < to && b[k].is_ascii_whitespace() {
            k += 1;
        }
        let name_start = k;
        while k < to && !b[k].is_ascii_whitespace() && !matches!(b[k], b'=' | b'>' | b'/') {
            k += 1;
        }
        let name = &b[name_start..k];
        while k < to && b[k].is_ascii_whitespace() {
            k += 1;
        }
        if k >= to || b[k] != b'=' {
            if k == name_start {
                k += 1; // a stray '/' or similar
            }
            continue;
        }
        k += 1;
        while k < to && b[k].is_ascii_whitespace() {
            k += 1;
        }
        let (vs, ve);
        match b.get(k) {
            Some(&q) if (q == b'"' || q == b'\'') && k < to => {
                vs = k + 1;
                let mut e = vs;
                while e < to && b[e] != q {
                    e += 1;
                }
                ve = e;
                k = e + 1;
            }
            _ => {
                vs = k;
                while k < to && !b[k].is_ascii_whitespace() {
                    k += 1;
                }
                ve = k;
            }
        }
        if name.eq_ignore_ascii_case(want) {
            return Some((vs, ve));
        }
    }
    None
}
