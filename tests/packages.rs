//! Packages over LSP: missing-import diagnostics on exact ranges, quick fixes, detection,
//! and installs with the real npm (skipped, saying so, only when no registry answers).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const PKG: &str = "{\n  \"name\": \"app\",\n  \"private\": true,\n  \"dependencies\": {\n    \"react\": \"^19.0.0\"\n  }\n}\n";

/// A fresh folder with [`PKG`] as its package.json.
fn pkg_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "package.json", PKG);
    dir
}

fn server(dir: &Path) -> TestServer {
    TestServer::start(
        vscode()
            .folder(dir)
            .init_options(json!({"diagnosticsDebounceMs": 0})),
    )
}

/// The latest diagnostics published for `path` (waits for at least one publication matching
/// `builder.installPackages {packages, wait: true}`; panics on a JSON-RPC error.
fn install(s: &TestServer, packages: Value) -> Value {
    s.execute(
        "builder.installPackages",
        json!({"packages": packages, "wait": true}),
    )
    .unwrap()
}

/// `pred`).
fn diagnostics_for(s: &TestServer, path: &Path, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let uri = file_uri(path);
    let latest = |msgs: &[Value]| latest_diagnostics(msgs, &uri);
    let ok = s.wait_for(
        |msgs| latest(msgs).is_some_and(|d| pred(&d)),
        Duration::from_secs(10),
    );
    let got = latest(&s.messages()).unwrap_or_default();
    assert!(ok, "no matching diagnostics for {uri}; last: {got:?}");
    got
}

fn packages_of(diags: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = diags
        .iter()
        .filter(|d| d["source"] == json!("builder"))
        .map(|d| d["data"]["package"].as_str().unwrap_or("").to_string())
        .collect();
    v.sort();
    v
}

fn registry_answers() -> bool {
    let out = Command::new("npm")
        .args(["view", "is-number@7.0.0", "version"])
        .output();
    match out {
        Ok(o) if o.status.success() => true,
        other => {
            eprintln!("SKIPPED: no npm registry answers (`npm view is-number` failed: {other:?})");
            false
        }
    }
}

#[test]
fn missing_imports_are_warnings_on_the_specifier() {
    let dir = pkg_project();
    write_file(
        dir.path(),
        "vite.config.js",
        "export default { resolve: { alias: { '@': '/src' } } }\n",
    );
    let app = dir.path().join("src/App.jsx");
    let text = "// import fake from 'in-a-comment'\nimport React from 'react';\nimport axios from \"axios\";\nimport Button from '@/components/Button';\nimport fs from 'node:fs';\nimport path from 'path';\nimport './index.css';\nconst s = \"import x from 'in-a-string'\";\nconst { motion } = await import('framer-motion');\nexport default function App() { return <p>Don't import 'this'</p> }\n";
    write_file(dir.path(), "src/App.jsx", text);
    let s = server(dir.path());
    s.open(&app, text);
    let d = diagnostics_for(&s, &app, |d| !d.is_empty());
    assert_eq!(packages_of(&d), ["axios", "framer-motion"], "{d:?}");
    let axios = d
        .iter()
        .find(|x| x["data"]["package"] == json!("axios"))
        .unwrap();
    assert_eq!(axios["severity"], json!(2));
    assert_eq!(axios["message"], json!("'axios' is not in package.json"));
    assert_eq!(axios["code"], json!("missing-package"));
    // Line 2, inside the quotes: `import axios from "` is 19 characters.
    assert_eq!(
        axios["range"],
        json!({"start": {"line": 2, "character": 19}, "end": {"line": 2, "character": 24}})
    );
    s.assert_no_panic();
    s.shutdown();
}

#[test]
fn diagnostics_follow_edits_and_package_json_saves() {
    let dir = pkg_project();
    let app = dir.path().join("src/main.ts");
    write_file(dir.path(), "src/main.ts", "");
    let s = server(dir.path());
    s.open(&app, "import a from 'react';\n");
    let d = diagnostics_for(&s, &app, |_| true);
    assert!(packages_of(&d).is_empty(), "{d:?}");
    s.change(
        &app,
        "import a from 'react';\nimport { z } from 'zod';\nimport type { Dayjs } from 'dayjs';\n",
    );
    let d = diagnostics_for(&s, &app, |d| d.len() == 2);
    assert_eq!(packages_of(&d), ["dayjs", "zod"]);
    let dayjs = d
        .iter()
        .find(|x| x["data"]["package"] == json!("dayjs"))
        .unwrap();
    assert_eq!(dayjs["data"]["typeOnly"], json!(true));
    assert!(
        dayjs["message"].as_str().unwrap().contains("types only"),
        "{dayjs}"
    );

    // npm (or the user) adds zod to package.json and saves it: zod is no longer missing.
    let manifest = write_file(
        dir.path(),
        "package.json",
        "{\"dependencies\": {\"react\": \"^19.0.0\", \"zod\": \"^3.0.0\"}}\n",
    );
    s.notify(
        "textDocument/didSave",
        json!({"textDocument": {"uri": file_uri(&manifest)}}),
    );
    let d = diagnostics_for(&s, &app, |d| d.len() == 1);
    assert_eq!(packages_of(&d), ["dayjs"]);

    // npm rewrote package.json behind the editor: the file watcher's notice is enough.
    write_file(
        dir.path(),
        "package.json",
        "{\"dependencies\": {\"react\": \"^19.0.0\", \"zod\": \"^3.0.0\"}, \"devDependencies\": {\"dayjs\": \"^1.0.0\"}}\n",
    );
    s.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": file_uri(&manifest), "type": 2}]}),
    );
    let d = diagnostics_for(&s, &app, |d| d.is_empty());
    assert!(d.is_empty(), "{d:?}");
    s.shutdown();
}

/// The code actions offered on `package`'s diagnostic, and their titles.
fn fixes_for(s: &TestServer, app: &Path, diags: &[Value], package: &str) -> (Value, Vec<String>) {
    let mine: Vec<Value> = diags
        .iter()
        .filter(|x| x["data"]["package"] == json!(package))
        .cloned()
        .collect();
    assert!(!mine.is_empty(), "no diagnostic for {package}: {diags:?}");
    let actions = s
        .request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": file_uri(app)}, "range": mine[0]["range"],
                   "context": {"diagnostics": mine}}),
        )
        .unwrap();
    let titles = actions
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap().to_string())
        .collect();
    (actions, titles)
}

#[test]
fn quick_fixes_install_one_all_or_types() {
    let dir = pkg_project();
    let app = dir.path().join("src/util.ts");
    let text = "import axios from 'axios';\nimport { z } from 'zod';\nimport type { Request } from 'express';\n";
    write_file(dir.path(), "src/util.ts", text);
    let s = server(dir.path());
    s.open(&app, text);
    let d = diagnostics_for(&s, &app, |d| d.len() == 3);
    let (actions, titles) = fixes_for(&s, &app, &d, "axios");
    assert_eq!(
        titles,
        ["Install axios", "Install all missing packages (2)"],
        "{actions}"
    );
    let install = &actions[0];
    assert_eq!(install["kind"], json!("quickfix"));
    assert_eq!(
        install["command"]["command"],
        json!("builder.installPackages")
    );
    assert_eq!(
        install["command"]["arguments"][0]["packages"],
        json!(["axios"])
    );
    assert_eq!(
        actions[1]["command"]["arguments"][0]["packages"],
        json!(["axios", "zod"])
    );

    let (actions, titles) = fixes_for(&s, &app, &d, "express");
    assert_eq!(
        &titles[..2],
        [
            "Install @types/express as a dev dependency",
            "Install express as a dev dependency"
        ],
        "{actions}"
    );
    assert_eq!(actions[0]["command"]["arguments"][0]["dev"], json!(true));
    s.shutdown();
}

#[test]
fn detect_packages_lists_missing_runtime_and_type_packages() {
    let dir = pkg_project();
    write_file(dir.path(), "src/a.jsx", "import React from 'react';\nimport { motion } from 'framer-motion';\nimport map from 'lodash/map';\n");
    write_file(
        dir.path(),
        "src/b.ts",
        "import type { Options } from 'ky';\nconst u = require('uuid');\n",
    );
    write_file(
        dir.path(),
        "node_modules/evil/index.js",
        "import 'never-scanned';\n",
    );
    let s = server(dir.path());
    let r = s
        .execute("builder.detectPackages", json!({"install": false}))
        .unwrap();
    assert_eq!(
        r["packages"],
        json!(["framer-motion", "lodash", "uuid"]),
        "{r}"
    );
    assert_eq!(r["typePackages"], json!(["ky"]), "{r}");
    assert_eq!(r["installed"], json!([]));
    // Explicit files instead of the project's.
    let r = s
        .execute(
            "builder.detectPackages",
            json!({"install": false, "files": {"src/x.js": "import '@scope/pkg/sub'; import './y';"}}),
        )
        .unwrap();
    assert_eq!(r["packages"], json!(["@scope/pkg"]), "{r}");
    // A files key leaving the project is refused, naming the field.
    let e = s.invalid_params(
        "builder.detectPackages",
        json!({"install": false, "files": {"../x.js": ""}}),
    );
    assert!(message(&e).contains("`files`"), "{e}");
    s.shutdown();
}

/// A bare specifier that resolves under `compilerOptions.baseUrl` (here inherited through
/// `extends`, beside `paths`) is a project module, not a missing package — as TypeScript
/// resolves it; a file that only shares a stem (`vite.config.js`) does not make `vite` local.
#[test]
fn base_url_imports_are_project_modules_not_packages() {
    // (tsconfig.json, tsconfig.base.json): baseUrl inherited, and baseUrl beside paths.
    let configs = [
        (
            "{\n  // the Vite template's shape\n  \"extends\": \"./tsconfig.base.json\",\n  \"compilerOptions\": { \"paths\": { \"@/*\": [\"src/*\"] } }\n}\n",
            Some(r#"{ "compilerOptions": { "baseUrl": "." } }"#),
        ),
        (
            r#"{ "compilerOptions": { "baseUrl": ".", "paths": { "@/*": ["src/*"] } } }"#,
            None,
        ),
    ];
    for (tsconfig, base) in configs {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_file(root, "package.json", PKG);
        write_file(root, "tsconfig.json", tsconfig);
        if let Some(base) = base {
            write_file(root, "tsconfig.base.json", base);
        }
        #[rustfmt::skip]
        write_files(root, &[
            ("vite.config.js", "export default {};\n"),
            ("src/utils/index.ts", "export const x = 1;\n"),
            ("src/types.ts", "export type T = number;\n"),
            ("components/Button.jsx", "export default function Button() { return null; }\n"),
        ]);
        let app = write_file(
            root,
            "src/App.tsx",
            "import { x } from 'src/utils';\nimport Button from 'components/Button';\nimport type { T } from 'src/types';\nimport { defineConfig } from 'vite';\nimport axios from 'axios';\n",
        );
        let s = server(root);
        let r = s
            .execute("builder.detectPackages", json!({"install": false}))
            .unwrap();
        assert_eq!(r["packages"], json!(["axios", "vite"]), "{tsconfig}: {r}");
        assert_eq!(r["typePackages"], json!([]), "{tsconfig}: {r}");
        // The editor's diagnostics agree.
        let text = std::fs::read_to_string(&app).unwrap();
        s.open(&app, &text);
        let diags = diagnostics_for(&s, &app, |d| !d.is_empty());
        assert_eq!(
            packages_of(&diags),
            vec!["axios", "vite"],
            "{tsconfig}: {diags:?}"
        );
        s.shutdown();
    }
}

#[test]
fn invalid_package_names_never_reach_npm() {
    let dir = pkg_project();
    let before = snapshot(dir.path());
    let s = server(dir.path());
    for (bad, field) in [
        (json!(["axios", "bad name; rm -rf /"]), "packages[1]"),
        (json!(["--registry=http://evil"]), "packages[0]"),
        (json!(["react@$(whoami)"]), "packages[0]"),
        (json!(["git+https://github.com/x/y"]), "packages[0]"),
    ] {
        let e = s.invalid_params(
            "builder.installPackages",
            json!({"packages": bad, "wait": true}),
        );
        assert!(message(&e).contains(field), "{field}: {e}");
    }
    let e = s
        .execute(
            "builder.installPackages",
            json!({"packages": [], "wait": true}),
        )
        .unwrap_err();
    assert!(message(&e).contains("`packages`"), "{e}");
    let e = s
        .execute(
            "builder.installPackages",
            json!({"packages": ["a"], "dev": "yes"}),
        )
        .unwrap_err();
    assert!(message(&e).contains("`dev`"), "{e}");
    assert_eq!(snapshot(dir.path()), before);
    s.shutdown();
}

#[test]
fn declared_packages_are_already_installed_and_not_reinstalled() {
    let dir = pkg_project();
    let s = server(dir.path());
    let r = install(&s, json!(["react"]));
    assert_eq!(r["alreadyInstalled"], json!(["react"]), "{r}");
    assert_eq!(r["installed"], json!([]));
    assert_eq!(r["log"], json!([]), "npm must not have run: {r}");
    assert!(!dir.path().join("node_modules").exists());
    s.shutdown();
}

#[test]
fn real_npm_install_and_a_failed_install_that_changes_nothing() {
    if !registry_answers() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pkg = "{\n    \"name\": \"app\",\n    \"version\": \"1.0.0\",\n    \"private\": true\n}\n";
    write_file(dir.path(), "package.json", pkg);
    let s = server(dir.path());

    // A package that does not exist: failed, files byte-identical, reason says why.
    let missing = "builder-lsp-no-such-package-7f3a9c";
    let r = install(&s, json!([missing]));
    assert_eq!(r["installed"], json!([]), "{r}");
    assert_eq!(r["failed"][0]["name"], json!(missing), "{r}");
    assert_eq!(
        r["failed"][0]["reason"],
        json!("not found in the registry"),
        "{r}"
    );
    assert_eq!(read(dir.path(), "package.json"), pkg);
    assert!(
        !dir.path().join("package-lock.json").exists(),
        "a lockfile appeared"
    );

    // A real one, with progress streamed as the task runs.
    let r = s
        .execute_with_token(
            "builder.installPackages",
            json!({"packages": ["is-number@7.0.0", missing], "wait": true}),
            "install-1",
        )
        .unwrap();
    assert_eq!(r["installed"], json!(["is-number"]), "{r}");
    assert_eq!(r["failed"][0]["name"], json!(missing), "{r}");
    assert_eq!(r["manager"], json!("npm"));
    let manifest: Value = serde_json::from_str(&read(dir.path(), "package.json")).unwrap();
    assert_eq!(
        manifest["dependencies"]["is-number"],
        json!("^7.0.0"),
        "{manifest}"
    );
    assert!(dir
        .path()
        .join("node_modules/is-number/package.json")
        .is_file());
    let lock_before = read(dir.path(), "package-lock.json");
    let progress = s.progress("install-1");
    assert!(
        progress.iter().any(|p| p["kind"] == json!("report")),
        "{progress:?}"
    );

    // A failing install now leaves the lockfile byte-identical too.
    let manifest_before = read(dir.path(), "package.json");
    let r = install(&s, json!([missing]));
    assert!(!r["failed"].as_array().unwrap().is_empty(), "{r}");
    assert_eq!(read(dir.path(), "package.json"), manifest_before);
    assert_eq!(read(dir.path(), "package-lock.json"), lock_before);

    // builder.apply installs what the answer imports before writing it.
    let answer =
        "<file path=\"src/check.js\">import isOdd from 'is-odd';\nexport default isOdd;\n</file>";
    let r = s.apply_with(json!({"response": answer}));
    assert_eq!(r["packagesInstalled"], json!(["is-odd"]), "{r}");
    let manifest: Value = serde_json::from_str(&read(dir.path(), "package.json")).unwrap();
    assert!(manifest["dependencies"]["is-odd"].is_string(), "{manifest}");
    assert_eq!(r["filesCreated"], json!(["src/check.js"]));
    s.shutdown();
}

#[test]
fn an_apply_that_installs_runs_as_a_task_by_default() {
    let dir = pkg_project();
    let s = server(dir.path());
    // Quick: nothing to install, so the full result comes back inline.
    let r = s
        .execute(
            "builder.apply",
            json!({"response": "<file path=\"src/a.js\">export const a = 1;\n</file>"}),
        )
        .unwrap();
    assert_eq!(r["filesCreated"], json!(["src/a.js"]), "{r}");
    // Long: a package to install, so `{taskId, started}` at once (Helix gives requests 20 s).
    let r = s
        .execute(
            "builder.apply",
            json!({"response": "<file path=\"src/b.js\">import pad from 'left-pad';\nexport default pad;\n</file>"}),
        )
        .unwrap();
    assert_eq!(r["started"], json!(true), "{r}");
    let id = r["taskId"].as_str().unwrap().to_string();
    s.execute("builder.task.cancel", json!({"taskId": id}))
        .unwrap();
    let ended = (0..600).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        s.execute("builder.task.status", json!({"taskId": id}))
            .unwrap()["state"]
            != json!("running")
    });
    assert!(ended, "the apply task did not end after cancel");
    s.shutdown();
}

#[test]
fn no_package_json_means_no_install_and_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path());
    let r = s.apply_with(json!({
        "response": "<file path=\"src/a.js\">import axios from 'axios';\nexport default axios;\n</file>"
    }));
    assert_eq!(r["filesCreated"], json!(["src/a.js"]), "{r}");
    assert_eq!(r["packagesInstalled"], json!([]), "{r}");
    assert_eq!(r["packagesFailed"][0]["name"], json!("axios"), "{r}");
    assert!(
        r["packagesFailed"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("no package.json"),
        "{r}"
    );
    assert!(
        !dir.path().join("package.json").exists(),
        "an install invented a manifest"
    );
    assert!(!dir.path().join("node_modules").exists());
    s.shutdown();
}

/// pnpm, Yarn (classic) and Bun from the npm registry into the test target dir once; a dir
/// with their commands for the front of PATH.
fn other_managers_bin() -> Option<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("package-managers");
    let bin = root.join("node_modules/.bin");
    if !["pnpm", "yarn", "bun"].iter().all(|p| bin.join(p).exists()) {
        std::fs::create_dir_all(&root).ok()?;
        let ok = std::process::Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(&root)
            .args(["pnpm@10", "yarn@1", "bun@1"])
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
    }
    Some(bin)
}

#[test]
fn real_pnpm_yarn_and_bun_installs_chosen_by_lockfile() {
    if !registry_answers() {
        return;
    }
    let bin = other_managers_bin().expect("pnpm, yarn and bun from the registry");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let missing = "builder-lsp-no-such-package-7f3a9c";
    for (manager, lockfile) in [
        ("pnpm", "pnpm-lock.yaml"),
        ("yarn", "yarn.lock"),
        ("bun", "bun.lock"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let pkg = "{\n  \"name\": \"app\",\n  \"version\": \"1.0.0\",\n  \"private\": true\n}\n";
        write_file(dir.path(), "package.json", pkg);
        // The project's own lockfile, written by the manager itself.
        let made = std::process::Command::new(bin.join(manager))
            .arg("install")
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("CI", "1")
            .output()
            .unwrap();
        assert!(made.status.success(), "{manager} install: {made:?}");
        if !dir.path().join(lockfile).exists() {
            // pnpm and yarn write no lockfile for a project without dependencies.
            write_file(dir.path(), lockfile, "");
        }
        let s = TestServer::start(vscode().folder(dir.path()).env("PATH", &path));

        let r = install(&s, json!(["is-number@7.0.0", missing]));
        assert_eq!(r["manager"], json!(manager), "{r}");
        assert_eq!(r["installed"], json!(["is-number"]), "{manager}: {r}");
        assert_eq!(r["failed"][0]["name"], json!(missing), "{manager}: {r}");
        assert_eq!(
            r["failed"][0]["reason"],
            json!("not found in the registry"),
            "{manager}: {r}"
        );
        let manifest: Value = serde_json::from_str(&read(dir.path(), "package.json")).unwrap();
        assert!(
            manifest["dependencies"]["is-number"]
                .as_str()
                .is_some_and(|v| v.contains("7.0.0")),
            "{manager}: {manifest}"
        );
        assert!(dir
            .path()
            .join("node_modules/is-number/package.json")
            .exists());
        let lock = read(dir.path(), lockfile);
        assert!(lock.contains("is-number"), "{manager}: {lock}");

        // A failed install leaves package.json and the lockfile byte-identical.
        let manifest_before = read(dir.path(), "package.json");
        let r = install(&s, json!([missing]));
        assert_eq!(r["installed"], json!([]), "{manager}: {r}");
        assert_eq!(
            read(dir.path(), "package.json"),
            manifest_before,
            "{manager}"
        );
        assert_eq!(read(dir.path(), lockfile), lock, "{manager}");
        s.shutdown();
    }
}
