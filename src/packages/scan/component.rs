//! Single-file components (`.vue`, `.svelte`): their `<script>` and `<style>` blocks, scanned
//! in file coordinates.

use memchr::{memchr, memmem};

use super::lexer::is_ident_byte;
use super::{scan_css, scan_script, Import};

/// A `.vue` or `.svelte` file: its `<script>` blocks scanned as script (JSX only when the block
/// says `lang="jsx"`/`"tsx"`), its `<style>` blocks as CSS; ranges stay in file coordinates.
pub(super) fn scan_component(src: &str) -> Vec<Import> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(k) = memchr(b'<', &b[i..]) {
        let open = i + k;
        let rest = &b[open + 1..];
        let (tag, close_tag): (&[u8], &[u8]) = if starts_with_ci(rest, b"script") {
            (b"script", b"</script")
        } else if starts_with_ci(rest, b"style") {
            (b"style", b"</style")
        } else {
            i = open + 1;
            continue;
        };
        let after_name = open + 1 + tag.len();
        if b.get(after_name)
            .is_some_and(|c| is_ident_byte(*c) || *c == b'-')
        {
            i = after_name;
            continue;
        }
        let Some(gt) = memchr(b'>', &b[after_name..]) else {
            break;
        };
        let attrs = &b[after_name..after_name + gt];
        let body_start = after_name + gt + 1;
        let body_end = find_ci(&b[body_start..], close_tag).map_or(b.len(), |k| body_start + k);
        let Some(body) = src.get(body_start..body_end) else {
            break;
        };
        let found = if tag == b"script" {
            let jsx =
                memmem::find(attrs, b"jsx").is_some() || memmem::find(attrs, b"tsx").is_some();
            scan_script(body, jsx)
        } else {
            scan_css(body)
        };
        out.extend(found.into_iter().map(|mut imp| {
            imp.range = imp.range.start + body_start..imp.range.end + body_start;
            imp
        }));
        i = body_end;
    }
    out
}

fn starts_with_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && hay[..needle.len()].eq_ignore_ascii_case(needle)
}

fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(k) = memchr(b'<', hay.get(i..)?) {
        let j = i + k;
        if starts_with_ci(&hay[j..], needle) {
            return Some(j);
        }
        i = j + 1;
    }
    None
}
