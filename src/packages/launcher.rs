//! How a package manager is started where an install runs. The workspace uses the user's own
//! `pnpm`/`yarn`/`bun` (a missing one is reported with how to get it). A sandbox image may ship
//! only npm (E2B's and Vercel's do), so there a manager that does not answer `--version` is
//! fetched by `npx` from the registry: the version `package.json`'s `packageManager` names (what
//! corepack would use), else the current release line.

use crate::exec::CommandSpec;

use serde::Serialize;

/// The package manager a project uses, by its lockfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PackageManager {
    Npm,
    Pnpm,
    Yarn,
    Bun,
}

impl PackageManager {
    /// The lockfile names in priority order (a project with several is unusual; the first wins).
    pub fn from_lockfiles(present: &dyn Fn(&str) -> bool) -> PackageManager {
        if present("pnpm-lock.yaml") {
            PackageManager::Pnpm
        } else if present("yarn.lock") {
            PackageManager::Yarn
        } else if present("bun.lockb") || present("bun.lock") {
            PackageManager::Bun
        } else {
            PackageManager::Npm
        }
    }

    pub fn program(self) -> &'static str {
        match self {
            PackageManager::Npm => "npm",
            PackageManager::Pnpm => "pnpm",
            PackageManager::Yarn => "yarn",
            PackageManager::Bun => "bun",
        }
    }

    /// Arguments to add `specs`; options first, names after `--` so none can pose as a flag.
    pub fn add_args(self, specs: &[String], dev: bool, legacy_peer_deps: bool) -> Vec<String> {
        let mut a: Vec<String> = match self {
            PackageManager::Npm => vec!["install".into(), "--no-audit".into(), "--no-fund".into()],
            PackageManager::Pnpm | PackageManager::Yarn | PackageManager::Bun => vec!["add".into()],
        };
        if dev {
            a.push(
                match self {
                    PackageManager::Npm | PackageManager::Pnpm => "--save-dev",
                    PackageManager::Yarn | PackageManager::Bun => "--dev",
                }
                .into(),
            );
        }
        if legacy_peer_deps && self == PackageManager::Npm {
            a.push("--legacy-peer-deps".into());
        }
        a.push("--".into());
        a.extend(specs.iter().cloned());
        a
    }

    /// Arguments to install everything `package.json` declares (sandbox seeding).
    pub fn install_all_args(self) -> Vec<String> {
        match self {
            PackageManager::Npm => vec![
                "install".into(),
                "--no-audit".into(),
                "--no-fund".into(),
                "--prefer-offline".into(),
            ],
            // CI=1 (set for plain output) makes pnpm freeze the lockfile; a sandbox installs like
            // a developer would, so a lockfile a step behind package.json still installs.
            PackageManager::Pnpm => vec!["install".into(), "--no-frozen-lockfile".into()],
            _ => vec!["install".into()],
        }
    }
}

/// A package manager's command line prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launcher {
    pub manager: PackageManager,
    program: String,
    prefix: Vec<String>,
    env: Vec<(String, String)>,
}

impl Launcher {
    /// The manager's own binary, from PATH.
    pub fn direct(manager: PackageManager) -> Launcher {
        Launcher {
            manager,
            program: manager.program().to_string(),
            prefix: Vec::new(),
            env: Vec::new(),
        }
    }

    /// `npx --yes <package> …`, the version from `packageManager` when it names this manager.
    pub fn via_npx(manager: PackageManager, package_manager_field: Option<&str>) -> Launcher {
        if manager == PackageManager::Npm {
            return Launcher::direct(manager);
        }
        let version = package_manager_field
            .and_then(|f| pinned_version(f, manager.program()))
            .map(str::to_string);
        let mut prefix = vec!["--yes".to_string()];
        match (manager, version) {
            // Yarn 2+ is not the `yarn` package (that is 1.x); its CLI is @yarnpkg/cli-dist.
            (PackageManager::Yarn, Some(v)) if !v.starts_with("1.") => {
                prefix.extend(["-p".into(), format!("@yarnpkg/cli-dist@{v}"), "yarn".into()]);
            }
            (PackageManager::Yarn, None) => prefix.push("yarn@1".into()),
            (m, Some(v)) => prefix.push(format!("{}@{v}", m.program())),
            (m, None) => prefix.push(format!("{}@latest", m.program())),
        }
        Launcher {
            manager,
            program: "npx".into(),
            prefix,
            env: Vec::new(),
        }
    }

    /// The command for `args` (the manager's own arguments).
    pub fn spec(&self, args: Vec<String>) -> CommandSpec {
        let mut all = self.prefix.clone();
        all.extend(args);
        let mut spec = CommandSpec::new(&self.program, all);
        spec.env.extend(self.env.iter().cloned());
        spec
    }

    /// Settings for an unattended install in a sandbox. Recent pnpm refuses to finish when a
    /// dependency's build script was skipped (`ERR_PNPM_IGNORED_BUILDS`, e.g. esbuild under
    /// Vite), which would stop every preview; there it is a warning, as it was before.
    pub fn unattended(mut self) -> Launcher {
        if self.manager == PackageManager::Pnpm {
            // pnpm ≤ 10 reads `npm_config_*`, pnpm 11+ `pnpm_config_*`.
            for var in [
                "npm_config_strict_dep_builds",
                "pnpm_config_strict_dep_builds",
            ] {
                self.env.push((var.into(), "false".into()));
            }
        }
        self
    }

    /// Whether the manager comes from the registry through npx.
    pub fn fetched(&self) -> bool {
        self.program == "npx"
    }

    /// For messages: "pnpm", or "pnpm (fetched by npx)".
    pub fn describe(&self) -> String {
        if self.fetched() {
            format!("{} (fetched by npx)", self.manager.program())
        } else {
            self.program.clone()
        }
    }
}

/// The version in a `packageManager` field (`pnpm@9.15.0+sha512.…`) when it names `name`; only
/// plain version characters, so nothing odd reaches a command line.
fn pinned_version<'a>(field: &'a str, name: &str) -> Option<&'a str> {
    let (n, rest) = field.trim().split_once('@')?;
    if n != name {
        return None;
    }
    let v = rest.split('+').next()?;
    let plain = !v.is_empty()
        && v.len() <= 64
        && v.starts_with(|c: char| c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    plain.then_some(v)
}

/// The `packageManager` field of a `package.json` text.
pub fn package_manager_field(package_json: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(package_json)
        .ok()?
        .get("packageManager")?
        .as_str()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(l: &Launcher, a: &[&str]) -> (String, Vec<String>) {
        let s = l.spec(a.iter().map(|s| s.to_string()).collect());
        (s.program.clone(), s.args.clone())
    }

    #[test]
    fn npx_fetches_the_pinned_version_or_the_release_line() {
        let l = Launcher::via_npx(PackageManager::Pnpm, Some("pnpm@9.15.0+sha512.76e2379760"));
        assert_eq!(
            args(&l, &["install"]),
            (
                "npx".into(),
                vec!["--yes".into(), "pnpm@9.15.0".into(), "install".into()]
            )
        );
        assert_eq!(l.describe(), "pnpm (fetched by npx)");
        let l = Launcher::via_npx(PackageManager::Bun, None);
        assert_eq!(args(&l, &[]).1, ["--yes", "bun@latest"]);
        // A field naming another manager is not this one's version.
        let l = Launcher::via_npx(PackageManager::Bun, Some("pnpm@9.1.0"));
        assert_eq!(args(&l, &[]).1, ["--yes", "bun@latest"]);
        let l = Launcher::via_npx(PackageManager::Yarn, None);
        assert_eq!(args(&l, &["add"]).1, ["--yes", "yarn@1", "add"]);
        let l = Launcher::via_npx(PackageManager::Yarn, Some("yarn@1.22.22"));
        assert_eq!(args(&l, &[]).1, ["--yes", "yarn@1.22.22"]);
        let l = Launcher::via_npx(PackageManager::Yarn, Some("yarn@4.5.3"));
        assert_eq!(
            args(&l, &["install"]).1,
            ["--yes", "-p", "@yarnpkg/cli-dist@4.5.3", "yarn", "install"]
        );
        let l = Launcher::via_npx(PackageManager::Npm, Some("npm@10.0.0"));
        assert_eq!(
            args(&l, &["install"]),
            ("npm".into(), vec!["install".into()])
        );
        assert_eq!(Launcher::direct(PackageManager::Yarn).describe(), "yarn");
        let s = Launcher::via_npx(PackageManager::Pnpm, None)
            .unattended()
            .spec(vec![]);
        assert_eq!(
            s.env
                .get("npm_config_strict_dep_builds")
                .map(String::as_str),
            Some("false")
        );
        assert!(Launcher::direct(PackageManager::Pnpm)
            .spec(vec![])
            .env
            .is_empty());
    }

    #[test]
    fn only_plain_versions_are_taken() {
        for bad in [
            "pnpm@",
            "pnpm@latest",
            "pnpm@$(id)",
            "pnpm@9 --registry=x",
            "pnpm@9;x",
            "pnpm",
        ] {
            assert_eq!(pinned_version(bad, "pnpm"), None, "{bad}");
        }
        assert_eq!(
            pinned_version("pnpm@10.0.0-rc.1", "pnpm"),
            Some("10.0.0-rc.1")
        );
        assert_eq!(
            package_manager_field(r#"{"name":"a","packageManager":"yarn@4.5.3"}"#).as_deref(),
            Some("yarn@4.5.3")
        );
        assert_eq!(package_manager_field("{not json"), None);
    }
}
