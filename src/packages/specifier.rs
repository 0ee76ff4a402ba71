//! From an import specifier to the npm package that would satisfy it, and the checks every
//! package name passes before it can reach an install command line.
//!
//! The rule of thumb: a specifier names a package only when nothing else can claim it. Relative
//! and absolute paths, URLs, `node:` and bare builtins, bundler ids with a `:`, `#` subpath
//! imports and configured aliases are all someone else's; what remains must also be a name npm
//! would accept for a new package, so a typo'd or hostile specifier is never offered for install.

use super::aliases::Aliases;

/// Node's builtin modules (`require('module').builtinModules` of current Node, plus the ones only
/// reachable as `node:x`). Sorted, for binary search.
const BUILTINS: &[&str] = &[
    "_http_agent",
    "_http_client",
    "_http_common",
    "_http_incoming",
    "_http_outgoing",
    "_http_server",
    "_stream_duplex",
    "_stream_passthrough",
    "_stream_readable",
    "_stream_transform",
    "_stream_wrap",
    "_stream_writable",
    "_tls_common",
    "_tls_wrap",
    "assert",
    "assert/strict",
    "async_hooks",
    "buffer",
    "child_process",
    "cluster",
    "console",
    "constants",
    "crypto",
    "dgram",
    "diagnostics_channel",
    "dns",
    "dns/promises",
    "domain",
    "events",
    "fs",
    "fs/promises",
    "http",
    "http2",
    "https",
    "inspector",
    "inspector/promises",
    "module",
    "net",
    "os",
    "path",
    "path/posix",
    "path/win32",
    "perf_hooks",
    "process",
    "punycode",
    "querystring",
    "quic",
    "readline",
    "readline/promises",
    "repl",
    "sea",
    "sqlite",
    "stream",
    "stream/consumers",
    "stream/iter",
    "stream/promises",
    "stream/web",
    "string_decoder",
    "sys",
    "test",
    "test/reporters",
    "timers",
    "timers/promises",
    "tls",
    "trace_events",
    "tty",
    "url",
    "util",
    "util/types",
    "v8",
    "vm",
    "wasi",
    "worker_threads",
    "zlib",
];

/// True for a Node builtin, with or without the `node:` prefix, and for any subpath of one
/// (`fs/promises`, `node:test/reporters`).
pub fn is_builtin(name: &str) -> bool {
    let name = name.strip_prefix("node:").unwrap_or(name);
    let first = name.split('/').next().unwrap_or(name);
    BUILTINS.binary_search(&name).is_ok() || BUILTINS.binary_search(&first).is_ok()
}

/// The package a specifier imports, or None when it is not a package (see the module doc).
pub fn package_name<'a>(spec: &'a str, aliases: &Aliases) -> Option<&'a str> {
    // `#internal` is a package.json subpath import; `\0` marks a Rollup virtual module.
    if spec.is_empty() || spec.starts_with('#') || spec.starts_with('\0') {
        return None;
    }
    // `pkg/x.css?inline`, `pkg/icon.svg#frag`: the query belongs to the bundler.
    let spec = match spec.find(['?', '#']) {
        Some(i) => spec.get(..i)?,
        None => spec,
    };
    if spec.is_empty()
        || spec.starts_with('.')
        || spec.starts_with('/')
        || spec.starts_with('\\')
        // `node:`, `http:`, `data:`, `virtual:`, `C:\`: never a package.
        || spec.contains(':')
        || aliases.matches(spec)
    {
        return None;
    }
    let name = if spec.starts_with('@') {
        let slash = spec.find('/')?;
        let end = spec[slash + 1..]
            .find('/')
            .map_or(spec.len(), |i| slash + 1 + i);
        &spec[..end]
    } else {
        spec.split('/').next().unwrap_or(spec)
    };
    if is_builtin(spec) || is_builtin(name) {
        return None;
    }
    validate_name(name).ok()?;
    Some(name)
}

/// Checks `name` by npm's rules for a *new* package (`validate-npm-package-name`,
/// `validForNewPackages`); the error says which rule failed.
pub fn validate_name(name: &str) -> Result<(), String> {
    check_name(name, true)
}

/// The npm rules, with the two that only bind new packages (no builtin names, no capitals) made
/// optional: `npm install events` or `JSONStream` is legitimate.
fn check_name(name: &str, new_package: bool) -> Result<(), String> {
    if name.is_empty() {
        return Err("name length must be greater than zero".into());
    }
    if name.len() > 214 {
        return Err("name can no longer contain more than 214 characters".into());
    }
    if name.starts_with('.') {
        return Err("name cannot start with a period".into());
    }
    if name.starts_with('_') {
        return Err("name cannot start with an underscore".into());
    }
    if name.trim() != name {
        return Err("name cannot contain leading or trailing spaces".into());
    }
    if name.eq_ignore_ascii_case("node_modules") || name.eq_ignore_ascii_case("favicon.ico") {
        return Err(format!(
            "{} is a blacklisted name",
            name.to_ascii_lowercase()
        ));
    }
    if new_package && is_builtin(name) {
        return Err(format!("{name} is a core module name"));
    }
    if new_package && name.chars().any(|c| c.is_uppercase()) {
        return Err("name can no longer contain capital letters".into());
    }
    if name.contains(['~', '\'', '!', '(', ')', '*']) {
        return Err("name can no longer contain special characters (\"~'!()*\")".into());
    }
    // encodeURIComponent leaves A-Z a-z 0-9 - _ . ! ~ * ' ( ) alone; the specials were refused
    // above. A scoped name may have one `@` and one `/` around two such parts.
    let url_safe = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    };
    let ok = match name.strip_prefix('@') {
        Some(scoped) => match scoped.split_once('/') {
            Some((scope, pkg)) => {
                if pkg.starts_with('.') {
                    return Err("name cannot start with a period".into());
                }
                url_safe(scope) && url_safe(pkg)
            }
            None => false,
        },
        None => url_safe(name),
    };
    if !ok {
        return Err("name can only contain URL-friendly characters".into());
    }
    Ok(())
}

/// Longest accepted version or tag in an install argument.
const MAX_VERSION_LEN: usize = 128;

/// Splits `name[@version]` for an install command and checks both halves, conservatively: a
/// value that fails never reaches a command line. Versions are single-token semver ranges
/// (`1.6.0`, `^19`, `~1.2`, `1.x`, `>=2` is refused for its `>`) or dist-tags (`latest`, `next`);
/// URLs, git specs, `file:` paths, `npm:` aliases, spaces and leading dashes are refused.
pub fn parse_install_arg(arg: &str) -> Result<(String, Option<String>), String> {
    if arg.is_empty() {
        return Err("empty package name".into());
    }
    if arg.starts_with('-') {
        return Err(format!("{arg:?} looks like a command-line option"));
    }
    if arg.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{arg:?} contains spaces or control characters"));
    }
    if arg.contains(':') {
        return Err(format!(
            "{arg:?} is a URL, path or protocol spec; only registry packages can be installed"
        ));
    }
    let at = match arg.strip_prefix('@') {
        Some(rest) => rest.find('@').map(|i| i + 1),
        None => arg.find('@'),
    };
    let (name, version) = match at {
        Some(i) => (&arg[..i], Some(&arg[i + 1..])),
        None => (arg, None),
    };
    check_name(name, false).map_err(|e| format!("{name:?}: {e}"))?;
    if let Some(v) = version {
        check_version(v).map_err(|e| format!("{arg:?}: {e}"))?;
    }
    Ok((name.to_owned(), version.map(str::to_owned)))
}

fn check_version(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err("empty version after '@'".into());
    }
    if v.len() > MAX_VERSION_LEN {
        return Err("version is too long".into());
    }
    if v.starts_with('-') {
        return Err("version cannot start with '-'".into());
    }
    let first = v.as_bytes()[0];
    let is_range =
        first.is_ascii_digit() || matches!(first, b'^' | b'~' | b'=' | b'*' | b'x' | b'X' | b'v');
    let range_ok = v.bytes().all(|c| {
        c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+' | b'^' | b'~' | b'*' | b'=')
    });
    let tag_ok = first.is_ascii_lowercase()
        && v.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        });
    if (is_range && range_ok) || tag_ok {
        Ok(())
    } else {
        Err(format!(
            "{v:?} is not a plain version range or dist-tag (allowed: digits, letters, . - + ^ ~ * =)"
        ))
    }
}

/// Packages that ship no types of their own and whose DefinitelyTyped package is what everyone
/// installs. Kept short on purpose: suggesting `@types/x` for a package that bundles its types
/// adds a stale, conflicting dependency.
const NEEDS_TYPES: &[&str] = &[
    "@babel/core",
    "@babel/generator",
    "@babel/template",
    "@babel/traverse",
    "bcrypt",
    "bcryptjs",
    "body-parser",
    "compression",
    "cookie-parser",
    "cors",
    "d3",
    "debug",
    "express",
    "express-session",
    "file-saver",
    "fs-extra",
    "jest",
    "jquery",
    "js-cookie",
    "jsdom",
    "jsonwebtoken",
    "leaflet",
    "lodash",
    "lodash-es",
    "lodash.debounce",
    "lodash.throttle",
    "mime-types",
    "minimist",
    "mocha",
    "morgan",
    "multer",
    "node",
    "nodemailer",
    "papaparse",
    "passport",
    "passport-local",
    "pg",
    "prop-types",
    "qs",
    "react",
    "react-dom",
    "react-syntax-highlighter",
    "sanitize-html",
    "semver",
    "shelljs",
    "supertest",
    "three",
    "uuid",
    "validator",
    "ws",
    "yargs",
];

/// The DefinitelyTyped package for `name` (`lodash` → `@types/lodash`, `@babel/core` →
/// `@types/babel__core`) when that package is the usual source of its types.
pub fn types_package(name: &str) -> Option<String> {
    NEEDS_TYPES.binary_search(&name).ok()?;
    Some(
        match name.strip_prefix('@').and_then(|s| s.split_once('/')) {
            Some((scope, pkg)) => format!("@types/{scope}__{pkg}"),
            None => format!("@types/{name}"),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(spec: &str) -> Option<&str> {
        package_name(spec, &Aliases::default())
    }

    #[test]
    fn lists_are_sorted_for_binary_search() {
        assert!(BUILTINS.windows(2).all(|w| w[0] < w[1]));
        assert!(NEEDS_TYPES.windows(2).all(|w| w[0] < w[1]));
        assert!(NEEDS_TYPES.len() >= 40);
    }

    #[test]
    fn bare_and_scoped_names_with_subpaths() {
        assert_eq!(pkg("react"), Some("react"));
        assert_eq!(pkg("lodash/map"), Some("lodash"));
        assert_eq!(pkg("@org/pkg"), Some("@org/pkg"));
        assert_eq!(pkg("@org/pkg/sub/deep.js"), Some("@org/pkg"));
        assert_eq!(pkg("react-dom/client"), Some("react-dom"));
        assert_eq!(pkg("@tanstack/react-query"), Some("@tanstack/react-query"));
    }

    #[test]
    fn paths_urls_and_ids_are_not_packages() {
        for s in [
            "./x",
            "../x",
            ".",
            "..",
            "/abs/x",
            "http://cdn.example/x.js",
            "https://esm.sh/react",
            "data:text/javascript,1",
            "file:///x",
            "virtual:pwa-register",
            "\0virtual",
            "#internal/x",
            "#lib",
            "~icons/mdi/home",
            "@",
            "@org",
            "@/components/Button",
            "React",
            "",
            "?raw",
            "C:\\x",
        ] {
            assert_eq!(pkg(s), None, "{s:?}");
        }
    }

    #[test]
    fn query_and_hash_suffixes_are_stripped() {
        assert_eq!(pkg("pkg/x.css?inline"), Some("pkg"));
        assert_eq!(pkg("@scope/icons/a.svg?url"), Some("@scope/icons"));
        assert_eq!(pkg("sprite/x.svg#icon"), Some("sprite"));
        assert_eq!(pkg("./x.svg?url"), None);
    }

    #[test]
    fn builtins_with_and_without_prefix() {
        for s in [
            "fs",
            "path",
            "fs/promises",
            "path/posix",
            "node:fs",
            "node:test",
            "node:sqlite",
            "test",
            "sqlite",
            "util/types",
            "node:test/reporters",
            "stream/web",
            "fs/whatever",
        ] {
            assert!(is_builtin(s), "{s}");
            assert_eq!(pkg(s), None, "{s}");
        }
        assert!(!is_builtin("fsevents"));
        assert!(!is_builtin("pathe"));
        assert_eq!(pkg("fsevents"), Some("fsevents"));
    }

    #[test]
    fn aliases_win_over_package_names() {
        let mut a = Aliases::default();
        a.add("@components");
        a.add("~/*");
        assert_eq!(package_name("@components/button", &a), None);
        assert_eq!(package_name("@components", &a), None);
        assert_eq!(
            package_name("@componentsx/button", &a),
            Some("@componentsx/button")
        );
        assert_eq!(package_name("~/x", &a), None);
    }

    #[test]
    fn validate_name_rules_with_reasons() {
        assert!(validate_name("some-package").is_ok());
        assert!(validate_name("example.com").is_ok());
        assert!(validate_name("under_score").is_ok());
        assert!(validate_name("@npm/thingy").is_ok());
        let cases = [
            ("", "greater than zero"),
            (".start", "period"),
            ("_start", "underscore"),
            (" leading", "spaces"),
            ("node_modules", "blacklisted"),
            ("favicon.ico", "blacklisted"),
            ("fs", "core module"),
            ("Caps", "capital"),
            ("crazy!", "special characters"),
            ("a~b", "special characters"),
            ("has space", "URL-friendly"),
            ("a/b", "URL-friendly"),
            ("@/x", "URL-friendly"),
            ("@s/.x", "period"),
            ("@a/b/c", "URL-friendly"),
            ("ünï", "URL-friendly"),
        ];
        for (name, why) in cases {
            let err = validate_name(name).expect_err(name);
            assert!(err.contains(why), "{name:?}: {err}");
        }
        assert!(validate_name(&"a".repeat(214)).is_ok());
        assert!(validate_name(&"a".repeat(215)).unwrap_err().contains("214"));
    }

    #[test]
    fn install_args_split_and_validated() {
        assert_eq!(parse_install_arg("axios").unwrap(), ("axios".into(), None));
        assert_eq!(
            parse_install_arg("axios@1.6.0").unwrap(),
            ("axios".into(), Some("1.6.0".into()))
        );
        assert_eq!(
            parse_install_arg("@types/react@^19").unwrap(),
            ("@types/react".into(), Some("^19".into()))
        );
        assert_eq!(
            parse_install_arg("react@latest").unwrap(),
            ("react".into(), Some("latest".into()))
        );
        assert_eq!(
            parse_install_arg("@scope/pkg").unwrap(),
            ("@scope/pkg".into(), None)
        );
        assert!(parse_install_arg("vue@3.4.0-beta.1").is_ok());
        assert!(parse_install_arg("x@~1.2").is_ok());
        assert!(
            parse_install_arg("events").is_ok(),
            "builtin-named npm packages exist"
        );
        for bad in [
            "",
            "-g",
            "--save",
            "axios@",
            "axios@1 || 2",
            "axios@>=1",
            "axios@$(rm -rf ~)",
            "axios@`id`",
            "axios;rm",
            "a b",
            "https://evil.example/x.tgz",
            "git+ssh://git@github.com/a/b.git",
            "github:user/repo",
            "user/repo",
            "file:../x",
            "../x",
            "x@npm:y@1",
            "x@-1",
            "x@Latest",
            "x@1;id",
            "@types/react@^19 && id",
            "(x)",
        ] {
            assert!(parse_install_arg(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn types_packages_only_for_curated_names() {
        assert_eq!(types_package("lodash").as_deref(), Some("@types/lodash"));
        assert_eq!(
            types_package("@babel/core").as_deref(),
            Some("@types/babel__core")
        );
        assert_eq!(types_package("express").as_deref(), Some("@types/express"));
        assert_eq!(types_package("axios"), None, "axios ships its own types");
        assert_eq!(types_package("zod"), None);
    }
}
