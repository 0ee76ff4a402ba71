//! Checking the relative paths a model names before anything is written.
//!
//! A path from a model is untrusted input: it must name a file inside the
//! project, spelled so that every platform and every later step (editor
//! URIs, zip export, the sandbox mirror) reads it the same way. Two layers:
//! [`normalize`] is purely lexical; [`resolve`] adds the file-system checks
//! that only the real tree can answer (symlinks, directories).
//!
//! Backslashes are separators: `src\App.jsx` becomes `src/App.jsx`, and `..`
//! written with backslashes is refused like any other.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Longest accepted path, in bytes, after normalization.
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest accepted single name, in bytes (NAME_MAX on Linux and most others).
pub const MAX_COMPONENT_BYTES: usize = 255;
/// Input longer than this is refused before any other work, to bound it.
const MAX_RAW_BYTES: usize = 4 * MAX_PATH_BYTES;

/// Why a path was refused; `Display` is a short reason for `filesSkipped`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("empty path")]
    Empty,
    #[error("absolute path")]
    Absolute,
    #[error("leaves the project (..)")]
    ParentDir,
    #[error("Windows drive path")]
    WindowsDrive,
    #[error("UNC path")]
    Unc,
    #[error("URL, not a file path")]
    Url,
    #[error("home directory path (~)")]
    HomeDir,
    #[error("contains a NUL byte")]
    Nul,
    #[error("contains control characters")]
    ControlChars,
    /// One of `< > : " | ? *`: names no Windows checkout could hold.
    #[error("contains {0:?}, which file names cannot hold")]
    InvalidChar(char),
    /// Trailing separator, or the target exists as a directory.
    #[error("is a directory")]
    Directory,
    /// Windows device names (`con`, `nul`, `com1`, …) with any extension.
    #[error("reserved name")]
    ReservedName,
    #[error("name ends with a space or dot")]
    TrailingDotOrSpace,
    #[error("path too long")]
    TooLong,
    #[error("file name too long")]
    ComponentTooLong,
    /// A `.git` component (any depth, any case), directly or via a symlink.
    #[error("inside a .git directory")]
    GitDir,
    #[error("points outside the project through a symlink")]
    SymlinkEscape,
    #[error("is a dangling symlink")]
    DanglingSymlink,
    /// The target is a symlink to a file that [`super::protected_reason`]
    /// guards; writing through it would bypass that check.
    #[error("is a symlink to a protected file")]
    SymlinkToProtected,
    /// An existing ancestor is a file, so the target cannot be created.
    #[error("a parent path is not a directory")]
    ParentNotDirectory,
    /// The file system could not answer (permissions, loops, missing root).
    #[error("cannot check the path: {0}")]
    Io(String),
}

/// A path that passed [`resolve`]: `rel` for reports and URIs, `abs` (under
/// the canonical root) for the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafePath {
    /// Normalized, `/`-separated, no `.` components.
    pub rel: String,
    /// Where the path really leads, relative to the root, through symlinked folders
    /// (`lib/x.js` when `lib` → `node_modules/pkg` is `node_modules/pkg/x.js`); the same as
    /// `rel` when no symlink is on the way. Protection rules look at both.
    pub real_rel: String,
    pub abs: PathBuf,
}

/// Lexical checks only (no file system): usable on any string.
///
/// Surrounding whitespace is trimmed first (it comes from attribute
/// formatting, never from a real name); `.` components and repeated
/// separators collapse. Everything else that is unusual is refused rather
/// than guessed at.
pub fn normalize(raw: &str) -> Result<String, PathError> {
    if raw.len() > MAX_RAW_BYTES {
        return Err(PathError::TooLong);
    }
    let s = raw.trim();
    if s.contains('\0') {
        return Err(PathError::Nul);
    }
    if s.chars().any(is_forbidden_control) {
        return Err(PathError::ControlChars);
    }
    if s.is_empty() {
        return Err(PathError::Empty);
    }
    let bytes = s.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err(PathError::WindowsDrive);
    }
    if s.contains("://") || starts_with_ignore_case(s, "file:") {
        return Err(PathError::Url);
    }
    let is_sep = |b: u8| b == b'/' || b == b'\\';
    if bytes.len() >= 3 && is_sep(bytes[0]) && is_sep(bytes[1]) && !is_sep(bytes[2]) {
        return Err(PathError::Unc);
    }
    if is_sep(bytes[0]) {
        return Err(PathError::Absolute);
    }

    let raw_parts: Vec<&str> = s.split(['/', '\\']).collect();
    let mut parts: Vec<&str> = Vec::with_capacity(raw_parts.len());
    for part in &raw_parts {
        match *part {
            "" | "." => continue,
            ".." => return Err(PathError::ParentDir),
            name => {
                // `~` only means "home" in front; `./~/x` is the same trick.
                if parts.is_empty() && name.starts_with('~') {
                    return Err(PathError::HomeDir);
                }
                check_component(name)?;
                parts.push(name);
            }
        }
    }
    if parts.is_empty() {
        return Err(PathError::Empty);
    }
    // `src/` or `src/.` name a directory, not a file to write.
    if matches!(raw_parts.last(), Some(&"") | Some(&".")) {
        return Err(PathError::Directory);
    }
    let rel = parts.join("/");
    if rel.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong);
    }
    Ok(rel)
}

/// [`normalize`] plus file-system checks against `root` (canonicalized
/// here, so callers may pass it as they have it): every existing ancestor of
/// the target, and the target itself if it is a symlink, must resolve inside
/// the root, and not into `.git`.
///
/// A target symlink that stays inside the project passes (an editor writes
/// through it); [`super::write::write_atomic`] still refuses to replace it.
/// The checks race with concurrent changes to the tree; the writer never
/// follows a symlink at the target, so a race can at worst fail a write.
pub fn resolve(root: &Path, raw: &str) -> Result<SafePath, PathError> {
    let rel = normalize(raw)?;
    let root = root
        .canonicalize()
        .map_err(|e| PathError::Io(format!("project root {}: {e}", root.display())))?;
    let names: Vec<&str> = rel.split('/').collect();
    let Some((target_name, dirs)) = names.split_last() else {
        return Err(PathError::Empty);
    };

    // Walk the ancestors while they exist; `real` tracks where the walk
    // really is, so a symlinked directory cannot smuggle a write into `.git`.
    let mut cur = root.clone();
    let mut real = root.clone();
    let mut all_exist = true;
    for name in dirs {
        cur.push(name);
        match std::fs::symlink_metadata(&cur) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = canonical_link(&cur)?;
                if !target.starts_with(&root) {
                    return Err(PathError::SymlinkEscape);
                }
                if !target.is_dir() {
                    return Err(PathError::ParentNotDirectory);
                }
                real = target;
            }
            Ok(meta) if meta.is_dir() => real.push(name),
            Ok(_) => return Err(PathError::ParentNotDirectory),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                all_exist = false;
                break;
            }
            Err(e) => return Err(PathError::Io(format!("{}: {e}", cur.display()))),
        }
    }
    if real_rel_in_git(&root, &real) {
        return Err(PathError::GitDir);
    }

    let abs = root.join(&rel);
    if all_exist {
        match std::fs::symlink_metadata(&abs) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = canonical_link(&abs)?;
                if !target.starts_with(&root) {
                    return Err(PathError::SymlinkEscape);
                }
                if target.is_dir() {
                    return Err(PathError::Directory);
                }
                if real_rel_in_git(&root, &target) {
                    return Err(PathError::GitDir);
                }
                let real_rel = target.strip_prefix(&root).unwrap_or(&target);
                let real_name = real_rel.to_string_lossy();
                if super::protected_reason(&real_name).is_some()
                    && super::protected_reason(target_name).is_none()
                {
                    return Err(PathError::SymlinkToProtected);
                }
            }
            Ok(meta) if meta.is_dir() => return Err(PathError::Directory),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(PathError::Io(format!("{}: {e}", abs.display()))),
        }
    }
    // The real location: the walked (symlink-resolved) ancestors, then the rest as named.
    let walked = real
        .strip_prefix(&root)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let depth = if all_exist {
        dirs.len()
    } else {
        cur.strip_prefix(&root)
            .map_or(0, |p| p.components().count().saturating_sub(1))
    };
    let mut real_rel: Vec<String> = walked
        .components()
        .filter_map(|c| c.as_os_str().to_str().map(str::to_owned))
        .collect();
    real_rel.extend(names[depth..].iter().map(|n| n.to_string()));
    Ok(SafePath {
        real_rel: real_rel.join("/"),
        rel,
        abs,
    })
}

/// Where a symlink finally points; a missing end is a dangling link.
fn canonical_link(link: &Path) -> Result<PathBuf, PathError> {
    link.canonicalize().map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            PathError::DanglingSymlink
        } else {
            PathError::Io(format!("{}: {e}", link.display()))
        }
    })
}

/// Whether the real location `p` (under `root`) lies in a `.git` directory.
fn real_rel_in_git(root: &Path, p: &Path) -> bool {
    p.strip_prefix(root).is_ok_and(|rest| {
        rest.components().any(|c| match c {
            Component::Normal(n) => n.to_str().is_some_and(is_git_name),
            _ => false,
        })
    })
}

fn is_git_name(name: &str) -> bool {
    name.eq_ignore_ascii_case(".git")
}

/// C0/C1 controls and DEL, plus the bidi overrides that let a name display
/// as something else ("Trojan Source" spoofing).
fn is_forbidden_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Per-name rules: the names must be portable (a Windows user may clone the
/// project) and must not reach the repository database.
fn check_component(name: &str) -> Result<(), PathError> {
    if name.len() > MAX_COMPONENT_BYTES {
        return Err(PathError::ComponentTooLong);
    }
    if let Some(c) = name.chars().find(|c| "<>:\"|?*".contains(*c)) {
        return Err(PathError::InvalidChar(c));
    }
    if name.ends_with(' ') || name.ends_with('.') {
        return Err(PathError::TrailingDotOrSpace);
    }
    if is_git_name(name) {
        return Err(PathError::GitDir);
    }
    if is_reserved_device(name) {
        return Err(PathError::ReservedName);
    }
    Ok(())
}

/// Windows device names stay devices whatever follows the first dot
/// (`nul.txt`, `CON.tar.gz`) and whatever trailing spaces precede it.
fn is_reserved_device(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    let lower = stem.to_lowercase();
    match lower.as_str() {
        "con" | "prn" | "aux" | "nul" | "conin$" | "conout$" => true,
        _ => {
            let rest = lower
                .strip_prefix("com")
                .or_else(|| lower.strip_prefix("lpt"));
            matches!(
                rest,
                Some("0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "¹" | "²" | "³")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        match normalize(raw) {
            Ok(s) => s,
            Err(e) => panic!("{raw:?} refused: {e}"),
        }
    }

    /// Every `(raw, want)` is accepted as `want`.
    fn normalized(cases: &[(&str, &str)]) {
        for (raw, want) in cases {
            assert_eq!(ok(raw), *want, "{raw:?}");
        }
    }

    /// Every one of `raws` is accepted as it is.
    fn kept(raws: &[&str]) {
        for raw in raws {
            assert_eq!(ok(raw), *raw);
        }
    }

    fn err(raw: &str) -> PathError {
        match normalize(raw) {
            Ok(s) => panic!("{raw:?} accepted as {s:?}"),
            Err(e) => e,
        }
    }

    /// Every one of `raws` is refused with `want`.
    fn refused_as(want: PathError, raws: &[&str]) {
        for raw in raws {
            assert_eq!(err(raw), want, "{raw:?}");
        }
    }

    // ---- lexical: accepted ----

    #[test]
    fn accepts_plain_paths() {
        kept(&[
            "src/App.jsx",
            "index.html",
            "public/favicon.svg",
            "src/components/ui/Button.tsx",
        ]);
    }

    #[test]
    fn strips_dot_and_collapses_separators() {
        normalized(&[
            ("./src/App.jsx", "src/App.jsx"),
            ("src//App.jsx", "src/App.jsx"),
            ("src/./components/./A.jsx", "src/components/A.jsx"),
            ("././index.html", "index.html"),
        ]);
    }

    #[test]
    fn backslashes_become_slashes() {
        normalized(&[
            ("src\\App.jsx", "src/App.jsx"),
            (".\\src\\components\\Hero.jsx", "src/components/Hero.jsx"),
        ]);
    }

    #[test]
    fn accepts_unicode_dotfiles_and_framework_names() {
        kept(&[
            "src/Über/ñandú.jsx",
            "docs/日本語.md",
            ".prettierrc",
            "src/.eslintrc.cjs",
            ".github/workflows/ci.yml",
            "app/[...slug]/+page.svelte",
            "routes/$id.tsx",
            "src/a~b.js",
            ".gitignore",
            "src/console.js",
            "src/com10.js",
        ]);
    }

    #[test]
    fn trims_surrounding_whitespace() {
        assert_eq!(ok("  src/App.jsx \n"), "src/App.jsx");
    }

    #[test]
    fn accepts_max_lengths() {
        let name = "a".repeat(MAX_COMPONENT_BYTES);
        assert_eq!(ok(&name), name);
        let long = vec!["abcdefghi"; MAX_PATH_BYTES / 10].join("/");
        assert!(long.len() <= MAX_PATH_BYTES);
        assert_eq!(ok(&long), long);
    }

    // ---- lexical: refused, one variant each ----

    #[test]
    fn refuses_absolute() {
        refused_as(
            PathError::Absolute,
            &["/etc/passwd", "\\foo", "///etc/passwd", " /etc/passwd"],
        );
    }

    #[test]
    fn refuses_parent_components() {
        refused_as(
            PathError::ParentDir,
            &[
                "../x",
                "a/../b",
                "src/..",
                "..\\..\\x",
                "src\\..\\..\\x",
                "..",
            ],
        );
    }

    #[test]
    fn refuses_windows_drives() {
        refused_as(PathError::WindowsDrive, &["C:\\x", "c:/x", "C:x", "C://x"]);
    }

    #[test]
    fn refuses_unc() {
        refused_as(
            PathError::Unc,
            &[
                "\\\\server\\share",
                "//server/share",
                "\\\\foo",
                "\\\\?\\C:\\x",
            ],
        );
    }

    #[test]
    fn refuses_nul_and_controls() {
        assert_eq!(err("src/App\0.jsx"), PathError::Nul);
        assert_eq!(err("src/\nApp.jsx"), PathError::ControlChars);
        assert_eq!(err("src/App\t.jsx"), PathError::ControlChars);
        assert_eq!(err("src/\u{1b}[31m.jsx"), PathError::ControlChars);
        assert_eq!(err("src/a\u{7f}.js"), PathError::ControlChars);
        assert_eq!(err("src/a\u{85}.js"), PathError::ControlChars);
        assert_eq!(err("src/evil\u{202E}gpj.js"), PathError::ControlChars);
    }

    #[test]
    fn refuses_empty() {
        refused_as(PathError::Empty, &["", "   ", ".", "./", "./."]);
    }

    #[test]
    fn refuses_only_slashes_as_absolute() {
        refused_as(PathError::Absolute, &["/", "//", "\\"]);
    }

    #[test]
    fn refuses_trailing_separator() {
        refused_as(
            PathError::Directory,
            &["src/", "src\\components\\", "src/."],
        );
    }

    #[test]
    fn refuses_home() {
        refused_as(PathError::HomeDir, &["~/.bashrc", "~", "~root/x", "./~/x"]);
    }

    #[test]
    fn refuses_urls() {
        refused_as(
            PathError::Url,
            &[
                "file:///etc/passwd",
                "FILE:src/a.js",
                "https://example.com/a.js",
                "src/http://x",
            ],
        );
    }

    #[test]
    fn refuses_reserved_device_names() {
        for name in [
            "con",
            "CON",
            "nul",
            "Nul.txt",
            "aux.js",
            "prn",
            "com1",
            "COM9.log",
            "lpt1",
            "lpt3.tar.gz",
            "src/con/App.jsx",
            "src/aux.jsx",
            "con .txt",
            "conin$",
            "com¹",
        ] {
            assert_eq!(err(name), PathError::ReservedName, "{name}");
        }
    }

    #[test]
    fn refuses_trailing_dot_or_space() {
        refused_as(
            PathError::TrailingDotOrSpace,
            &["src/App.jsx.", "src /App.jsx", "src/.../x", "dir./x.js"],
        );
    }

    #[test]
    fn refuses_windows_invalid_chars() {
        assert_eq!(err("src/a?.js"), PathError::InvalidChar('?'));
        assert_eq!(err("src/*.js"), PathError::InvalidChar('*'));
        assert_eq!(err("src/a:b.js"), PathError::InvalidChar(':'));
        assert_eq!(err("src/<App>.jsx"), PathError::InvalidChar('<'));
        assert_eq!(err("a|b"), PathError::InvalidChar('|'));
        assert_eq!(err("\"q\".js"), PathError::InvalidChar('"'));
    }

    #[test]
    fn refuses_over_long() {
        assert_eq!(err(&"a".repeat(256)), PathError::ComponentTooLong);
        let long = vec!["abcdefghij"; 100].join("/");
        assert!(long.len() > MAX_PATH_BYTES);
        assert_eq!(err(&long), PathError::TooLong);
        assert_eq!(err(&"a/".repeat(5000)), PathError::TooLong);
    }

    #[test]
    fn refuses_git_dir() {
        assert_eq!(err(".git/config"), PathError::GitDir);
        assert_eq!(err(".git/hooks/pre-commit"), PathError::GitDir);
        assert_eq!(err("./.GIT/HEAD"), PathError::GitDir);
        assert_eq!(err(".git"), PathError::GitDir);
        assert_eq!(
            err("vendor/lib/.git/hooks/post-checkout"),
            PathError::GitDir
        );
    }

    #[test]
    fn display_is_short() {
        assert_eq!(PathError::Absolute.to_string(), "absolute path");
        assert_eq!(PathError::ParentDir.to_string(), "leaves the project (..)");
        assert_eq!(
            PathError::SymlinkEscape.to_string(),
            "points outside the project through a symlink"
        );
        assert_eq!(
            PathError::InvalidChar('?').to_string(),
            "contains '?', which file names cannot hold"
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        let samples = [
            "\u{feff}",
            "é:",
            ":",
            "a:",
            "::",
            "\\\\",
            "\\\\\\",
            "/\\",
            "\\/x",
            "~",
            "..\\",
            "a/\u{200b}",
            "💥/💥",
            "a\\",
            "\u{3000}",
            "C:",
            "c",
            "ab:/x",
        ];
        for s in samples {
            let _ = normalize(s);
        }
        let mut rng = fastrand::Rng::with_seed(7);
        let alphabet: Vec<char> = "a./\\:~ \0\n.é💥?C".chars().collect();
        for _ in 0..5000 {
            let len = rng.usize(0..12);
            let s: String = (0..len)
                .map(|_| alphabet[rng.usize(0..alphabet.len())])
                .collect();
            if let Ok(n) = normalize(&s) {
                // Whatever passes is stable and clean.
                assert_eq!(normalize(&n), Ok(n.clone()), "{s:?}");
                assert!(!n.split('/').any(|c| c.is_empty() || c == "." || c == ".."));
                assert!(!n.contains('\\'));
            }
        }
    }

    // ---- file system ----

    #[cfg(unix)]
    mod fs {
        use super::super::*;
        use std::os::unix::fs::symlink;

        fn project() -> (tempfile::TempDir, PathBuf) {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().canonicalize().unwrap();
            std::fs::create_dir_all(root.join("src")).unwrap();
            std::fs::write(root.join("src/App.jsx"), "x").unwrap();
            (dir, root)
        }

        #[test]
        fn resolves_plain_and_new_paths() {
            let (_d, root) = project();
            let p = resolve(&root, "./src/App.jsx").unwrap();
            assert_eq!(p.rel, "src/App.jsx");
            assert_eq!(p.abs, root.join("src/App.jsx"));
            let p = resolve(&root, "src/new/deeper/Hero.jsx").unwrap();
            assert_eq!(p.abs, root.join("src/new/deeper/Hero.jsx"));
        }

        #[test]
        fn canonicalizes_the_root_itself() {
            let (_d, root) = project();
            let alias = tempfile::tempdir().unwrap();
            let link = alias.path().join("proj");
            symlink(&root, &link).unwrap();
            let p = resolve(&link, "src/App.jsx").unwrap();
            assert_eq!(p.abs, root.join("src/App.jsx"));
        }

        #[test]
        fn lexical_errors_come_first() {
            let (_d, root) = project();
            assert_eq!(resolve(&root, "../x"), Err(PathError::ParentDir));
            assert_eq!(resolve(&root, "/etc/passwd"), Err(PathError::Absolute));
        }

        #[test]
        fn missing_root_is_io() {
            let (_d, root) = project();
            let gone = root.join("nope");
            assert!(matches!(resolve(&gone, "a.js"), Err(PathError::Io(_))));
        }

        #[test]
        fn dir_symlink_outside_is_refused() {
            let (_d, root) = project();
            let elsewhere = tempfile::tempdir().unwrap();
            symlink(elsewhere.path(), root.join("lib")).unwrap();
            assert_eq!(resolve(&root, "lib/App.jsx"), Err(PathError::SymlinkEscape));
            assert_eq!(
                resolve(&root, "lib/new/dir/App.jsx"),
                Err(PathError::SymlinkEscape)
            );
        }

        #[test]
        fn replaced_src_symlink_outside_is_refused() {
            let (_d, root) = project();
            let elsewhere = tempfile::tempdir().unwrap();
            std::fs::remove_dir_all(root.join("src")).unwrap();
            symlink(elsewhere.path(), root.join("src")).unwrap();
            assert_eq!(resolve(&root, "src/App.jsx"), Err(PathError::SymlinkEscape));
        }

        #[test]
        fn relative_symlink_climbing_out_is_refused() {
            let (_d, root) = project();
            symlink("../..", root.join("src/up")).unwrap();
            assert_eq!(resolve(&root, "src/up/x.js"), Err(PathError::SymlinkEscape));
        }

        #[test]
        fn dir_symlink_inside_is_fine() {
            let (_d, root) = project();
            std::fs::create_dir_all(root.join("shared/components")).unwrap();
            symlink(root.join("shared/components"), root.join("src/components")).unwrap();
            let p = resolve(&root, "src/components/Hero.jsx").unwrap();
            assert_eq!(p.rel, "src/components/Hero.jsx");
            assert_eq!(p.abs, root.join("src/components/Hero.jsx"));
            assert_eq!(p.real_rel, "shared/components/Hero.jsx");
            symlink("../shared", root.join("src/rel")).unwrap();
            let p = resolve(&root, "src/rel/components/X.jsx").unwrap();
            assert_eq!(p.real_rel, "shared/components/X.jsx");
            // Missing folders after the link keep their names.
            let p = resolve(&root, "src/rel/new/deeper/X.jsx").unwrap();
            assert_eq!(p.real_rel, "shared/new/deeper/X.jsx");
            assert_eq!(
                resolve(&root, "plain/new/X.jsx").unwrap().real_rel,
                "plain/new/X.jsx"
            );
        }

        #[test]
        fn dir_symlink_into_git_is_refused() {
            let (_d, root) = project();
            std::fs::create_dir_all(root.join(".git/hooks")).unwrap();
            symlink(root.join(".git"), root.join("meta")).unwrap();
            assert_eq!(
                resolve(&root, "meta/hooks/pre-commit"),
                Err(PathError::GitDir)
            );
            symlink(root.join(".git/hooks"), root.join("src/h")).unwrap();
            assert_eq!(resolve(&root, "src/h/post-merge"), Err(PathError::GitDir));
        }

        #[test]
        fn file_symlink_outside_is_refused() {
            let (_d, root) = project();
            let elsewhere = tempfile::tempdir().unwrap();
            let secret = elsewhere.path().join("secret.txt");
            std::fs::write(&secret, "s").unwrap();
            symlink(&secret, root.join("src/config.js")).unwrap();
            assert_eq!(
                resolve(&root, "src/config.js"),
                Err(PathError::SymlinkEscape)
            );
        }

        #[test]
        fn dangling_target_symlink_is_refused() {
            let (_d, root) = project();
            symlink(root.join("nowhere.js"), root.join("src/gone.js")).unwrap();
            assert_eq!(
                resolve(&root, "src/gone.js"),
                Err(PathError::DanglingSymlink)
            );
            symlink("/definitely/not/here", root.join("src/out.js")).unwrap();
            assert_eq!(
                resolve(&root, "src/out.js"),
                Err(PathError::DanglingSymlink)
            );
        }

        #[test]
        fn dangling_dir_symlink_is_refused() {
            let (_d, root) = project();
            symlink(root.join("missing"), root.join("lib")).unwrap();
            assert_eq!(resolve(&root, "lib/a.js"), Err(PathError::DanglingSymlink));
        }

        #[test]
        fn file_symlink_inside_passes() {
            let (_d, root) = project();
            symlink(root.join("src/App.jsx"), root.join("src/Alias.jsx")).unwrap();
            let p = resolve(&root, "src/Alias.jsx").unwrap();
            assert_eq!(p.abs, root.join("src/Alias.jsx"));
        }

        #[test]
        fn file_symlink_to_protected_is_refused() {
            let (_d, root) = project();
            std::fs::write(root.join("package.json"), "{}").unwrap();
            symlink(root.join("package.json"), root.join("src/data.json")).unwrap();
            assert_eq!(
                resolve(&root, "src/data.json"),
                Err(PathError::SymlinkToProtected)
            );
        }

        #[test]
        fn file_symlink_into_git_is_refused() {
            let (_d, root) = project();
            std::fs::create_dir_all(root.join(".git")).unwrap();
            std::fs::write(root.join(".git/config"), "").unwrap();
            symlink(root.join(".git/config"), root.join("cfg.ini")).unwrap();
            assert_eq!(resolve(&root, "cfg.ini"), Err(PathError::GitDir));
        }

        #[test]
        fn symlink_loop_is_io() {
            let (_d, root) = project();
            symlink(root.join("b.js"), root.join("a.js")).unwrap();
            symlink(root.join("a.js"), root.join("b.js")).unwrap();
            assert!(matches!(resolve(&root, "a.js"), Err(PathError::Io(_))));
        }

        #[test]
        fn existing_directory_target_is_refused() {
            let (_d, root) = project();
            assert_eq!(resolve(&root, "src"), Err(PathError::Directory));
            symlink(root.join("src"), root.join("srclink")).unwrap();
            assert_eq!(resolve(&root, "srclink"), Err(PathError::Directory));
        }

        #[test]
        fn file_as_parent_is_refused() {
            let (_d, root) = project();
            assert_eq!(
                resolve(&root, "src/App.jsx/child.js"),
                Err(PathError::ParentNotDirectory)
            );
            symlink(root.join("src/App.jsx"), root.join("filelink")).unwrap();
            assert_eq!(
                resolve(&root, "filelink/x.js"),
                Err(PathError::ParentNotDirectory)
            );
        }
    }
}
