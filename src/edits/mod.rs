//! Putting a model's answer on disk safely: path checks ([`path`]), atomic
//! writes ([`write`]), targeted `<edit>` blocks ([`search_replace`]) and the
//! list of files an answer may not overwrite ([`protected_reason`]).

pub mod path;
pub mod search_replace;
pub mod write;

/// Config and build files with every extension a JS toolchain loads.
/// Listed one by one so that each gets a reason naming the exact file.
const BUILD_CONFIGS: &[(&str, &str)] = &[
    (
        "vite.config.js",
        "build config (vite.config.js) is protected",
    ),
    (
        "vite.config.cjs",
        "build config (vite.config.cjs) is protected",
    ),
    (
        "vite.config.mjs",
        "build config (vite.config.mjs) is protected",
    ),
    (
        "vite.config.ts",
        "build config (vite.config.ts) is protected",
    ),
    (
        "vite.config.cts",
        "build config (vite.config.cts) is protected",
    ),
    (
        "vite.config.mts",
        "build config (vite.config.mts) is protected",
    ),
    (
        "tailwind.config.js",
        "build config (tailwind.config.js) is protected",
    ),
    (
        "tailwind.config.cjs",
        "build config (tailwind.config.cjs) is protected",
    ),
    (
        "tailwind.config.mjs",
        "build config (tailwind.config.mjs) is protected",
    ),
    (
        "tailwind.config.ts",
        "build config (tailwind.config.ts) is protected",
    ),
    (
        "tailwind.config.cts",
        "build config (tailwind.config.cts) is protected",
    ),
    (
        "tailwind.config.mts",
        "build config (tailwind.config.mts) is protected",
    ),
    (
        "postcss.config.js",
        "build config (postcss.config.js) is protected",
    ),
    (
        "postcss.config.cjs",
        "build config (postcss.config.cjs) is protected",
    ),
    (
        "postcss.config.mjs",
        "build config (postcss.config.mjs) is protected",
    ),
    (
        "postcss.config.ts",
        "build config (postcss.config.ts) is protected",
    ),
    (
        "postcss.config.cts",
        "build config (postcss.config.cts) is protected",
    ),
    (
        "postcss.config.mts",
        "build config (postcss.config.mts) is protected",
    ),
];

/// Manifests and lockfiles: only the package installer may change them, or
/// the project's dependencies drift from what was installed.
const PACKAGE_FILES: &[(&str, &str)] = &[
    (
        "package.json",
        "package.json is managed by the package installer",
    ),
    (
        "package-lock.json",
        "package-lock.json is managed by the package installer",
    ),
    (
        "npm-shrinkwrap.json",
        "npm-shrinkwrap.json is managed by the package installer",
    ),
    ("yarn.lock", "yarn.lock is managed by the package installer"),
    (
        "pnpm-lock.yaml",
        "pnpm-lock.yaml is managed by the package installer",
    ),
    ("bun.lockb", "bun.lockb is managed by the package installer"),
    ("bun.lock", "bun.lock is managed by the package installer"),
];

/// Files a generated answer must never overwrite unless the user allows it
/// (DESIGN.md §5), with a short reason for `filesSkipped`.
///
/// Any path through a `node_modules` folder is protected. Otherwise it
/// matches the last path component (`/` or `\` separated), ASCII
/// case-insensitively, so `web/Package.JSON` is caught as well. `.env*`
/// follows DESIGN.md and so also covers `.envrc` (direnv runs it as shell).
pub fn protected_reason(rel: &str) -> Option<&'static str> {
    // Installed packages: the next install erases generated code there, and it would run
    // with the project's rights from inside a dependency.
    if rel
        .split(['/', '\\'])
        .any(|c| c.eq_ignore_ascii_case("node_modules"))
    {
        return Some(
            "inside node_modules: installed packages are managed by the package manager (the next install erases them)",
        );
    }
    let name = rel
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(rel)
        .to_ascii_lowercase();
    if name.is_empty() {
        return None;
    }
    if let Some((_, why)) = PACKAGE_FILES
        .iter()
        .chain(BUILD_CONFIGS)
        .find(|(n, _)| *n == name)
    {
        return Some(why);
    }
    // Unusual extensions (`vite.config.json`, Vite's own
    // `vite.config.ts.timestamp-….mjs`) still belong to the build.
    if name.starts_with("vite.config.") {
        return Some("build config (vite.config.*) is protected");
    }
    if name.starts_with("tailwind.config.") {
        return Some("build config (tailwind.config.*) is protected");
    }
    if name.starts_with("postcss.config.") {
        return Some("build config (postcss.config.*) is protected");
    }
    if name.starts_with("tsconfig") && name.ends_with(".json") {
        return Some("TypeScript config (tsconfig*.json) is protected");
    }
    if name.starts_with("jsconfig") && name.ends_with(".json") {
        return Some("JavaScript config (jsconfig*.json) is protected");
    }
    if name.starts_with(".env") {
        return Some("environment file (.env*) may hold secrets and is protected");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::protected_reason;

    #[test]
    fn node_modules_anywhere() {
        for p in [
            "node_modules/evil/index.js",
            "Node_Modules/x.js",
            "apps/web/node_modules/react/index.js",
            "a\\node_modules\\b.js",
            "node_modules",
        ] {
            assert!(
                protected_reason(p).is_some_and(|w| w.contains("node_modules")),
                "{p}"
            );
        }
        assert_eq!(protected_reason("src/node_modules_list.js"), None);
        assert_eq!(protected_reason("src/my_node_modules/x.js"), None);
    }

    #[test]
    fn package_files_anywhere() {
        for p in [
            "package.json",
            "apps/web/package.json",
            "package-lock.json",
            "npm-shrinkwrap.json",
            "yarn.lock",
            "pnpm-lock.yaml",
            "bun.lockb",
            "bun.lock",
            "deep/nested/dir/yarn.lock",
            "sub\\package.json",
        ] {
            let why = protected_reason(p);
            assert!(why.is_some(), "{p} should be protected");
            assert!(why.unwrap_or("").contains("package installer"), "{p}");
        }
        assert_eq!(
            protected_reason("package.json"),
            Some("package.json is managed by the package installer")
        );
    }

    #[test]
    fn build_configs_every_extension() {
        for stem in ["vite", "tailwind", "postcss"] {
            for ext in ["js", "cjs", "mjs", "ts", "cts", "mts"] {
                let name = format!("{stem}.config.{ext}");
                let why = protected_reason(&name);
                assert_eq!(
                    why.map(|w| w.contains(&name)),
                    Some(true),
                    "{name}: {why:?}"
                );
                assert!(protected_reason(&format!("packages/ui/{name}")).is_some());
            }
        }
        assert_eq!(
            protected_reason("vite.config.ts"),
            Some("build config (vite.config.ts) is protected")
        );
        assert!(protected_reason("vite.config.json").is_some());
    }

    #[test]
    fn ts_and_js_configs() {
        for p in [
            "tsconfig.json",
            "tsconfig.app.json",
            "tsconfig.node.json",
            "packages/a/tsconfig.build.json",
            "jsconfig.json",
            "jsconfig.base.json",
        ] {
            assert!(protected_reason(p).is_some(), "{p}");
        }
        assert_eq!(protected_reason("tsconfig.ts"), None);
    }

    #[test]
    fn env_files_any_depth() {
        for p in [
            ".env",
            ".env.local",
            ".env.production.local",
            "server/.env",
            "a/b/.env.development",
        ] {
            assert!(protected_reason(p).is_some(), "{p}");
        }
    }

    #[test]
    fn case_insensitive() {
        for p in [
            "Package.json",
            "PACKAGE.JSON",
            "Vite.Config.TS",
            "TSCONFIG.JSON",
            ".ENV",
        ] {
            assert!(protected_reason(p).is_some(), "{p}");
        }
    }

    #[test]
    fn ordinary_files_are_not_protected() {
        for p in [
            "src/App.jsx",
            "index.html",
            "src/vite-env.d.ts",
            "src/config.ts",
            "src/package.json.ts",
            "docs/env.md",
            "src/environment.ts",
            "public/favicon.svg",
            "README.md",
            "",
            "src/",
        ] {
            assert_eq!(protected_reason(p), None, "{p}");
        }
    }
}
