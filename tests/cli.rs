//! The headless face: the same engine from the command line.

mod common;
mod fakes;

use std::io::Write;
use std::process::{Command, Stdio};

use builder_lsp::ai::Provider;
use fakes::*;
use serde_json::Value;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_builder-lsp"));
    for var in [
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "DEFAULT_AI_MODEL",
        "OPENAI_BASE_URL",
    ] {
        c.env_remove(var);
    }
    c
}

/// The example answer shipped in `examples/`.
const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/react-tailwind-app.txt"
);

/// A fake OpenAI that streams each of `answers` in turn (9-character chunks).
fn openai_fake(answers: &[&str]) -> FakeProvider {
    let replies = answers
        .iter()
        .map(|a| Reply::sse(openai_frames(&chunk_text(a, 9), "stop")))
        .collect();
    FakeProvider::start(replies)
}

/// The binary pointed at `fake` as OpenAI with `key`.
fn bin_with_openai(fake: &FakeProvider, key: &str) -> Command {
    let mut c = bin();
    c.env("OPENAI_BASE_URL", fake.base_url_for(Provider::OpenAi))
        .env("OPENAI_API_KEY", key);
    c
}

/// Asserts the command succeeded (showing both streams if not); its stdout as JSON.
fn success_json(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `builder-lsp sandbox ACTION --dir DIR` with this state folder; its JSON answer.
fn sandbox_cli(action: &str, dir: &std::path::Path, state: &std::path::Path) -> Value {
    let out = bin()
        .args(["sandbox", action, "--dir"])
        .arg(dir)
        .env("BUILDER_STATE_DIR", state)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The first error of the first fix round starts with `prefix`.
fn assert_first_error(rounds: &[Value], prefix: &str) {
    assert!(
        rounds[0]["errors"][0].as_str().unwrap().starts_with(prefix),
        "{rounds:#?}"
    );
}

/// An App that renders `Child`, the Child that throws `message`, and its fix.
const APP_WITH_CHILD: &str = "import Child from './components/Child.jsx';\n\nexport default function App() {\n  return <main><Child /></main>;\n}\n";
const FIXED_CHILD: &str = "export default function Child() {\n  return <p>fixed</p>;\n}\n";
fn throwing_child(message: &str) -> String {
    format!("export default function Child() {{\n  const label = 'child';\n  throw new Error('{message}');\n}}\n")
}

/// A project folder with its own state and cache folders.
struct Folders {
    dir: tempfile::TempDir,
    state: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl Folders {
    fn new() -> Folders {
        Folders {
            dir: tempfile::tempdir().unwrap(),
            state: tempfile::tempdir().unwrap(),
            cache: tempfile::tempdir().unwrap(),
        }
    }

    /// `builder-lsp ARGS --dir DIR` against `fake` as OpenAI with `key`, in these folders.
    fn run(&self, fake: &FakeProvider, key: &str, args: &[&str]) -> std::process::Output {
        bin_with_openai(fake, key)
            .args(args)
            .arg("--dir")
            .arg(self.dir.path())
            .env("BUILDER_STATE_DIR", self.state.path())
            .env("BUILDER_CACHE_DIR", self.cache.path())
            .output()
            .unwrap()
    }
}

fn read_in(dir: &tempfile::TempDir, rel: &str) -> String {
    std::fs::read_to_string(dir.path().join(rel)).unwrap()
}

#[test]
fn version_and_help() {
    let out = bin().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("builder-lsp {}", env!("CARGO_PKG_VERSION"))
    );
    let out = bin().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for sub in ["apply", "generate", "zip", "--stdio"] {
        assert!(help.contains(sub), "--help lacks {sub}: {help}");
    }
}

#[test]
fn apply_the_shipped_example_from_a_file_and_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["apply", EXAMPLE, "--dir"])
        .arg(dir.path())
        .env("BUILDER_STATE_DIR", state.path())
        .output()
        .unwrap();
    let r = success_json(&out);
    assert_eq!(r["filesCreated"].as_array().unwrap().len(), 8, "{r:#}");
    assert_eq!(r["appliedVia"], "disk");
    assert!(dir.path().join("src/components/Hero.jsx").is_file());

    let dir2 = tempfile::tempdir().unwrap();
    let mut child = bin()
        .args(["apply", "-", "--dir"])
        .arg(dir2.path())
        .env("BUILDER_STATE_DIR", state.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"<file path=\"src/A.jsx\">\nexport const A = 1;\n</file>\n<file path=\"../evil.js\">\nx\n</file>\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["filesCreated"], serde_json::json!(["src/A.jsx"]));
    assert_eq!(r["filesSkipped"][0]["path"], "../evil.js");
    assert!(!dir2.path().parent().unwrap().join("evil.js").exists());
}

#[test]
fn oversized_answer_and_missing_folder_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["apply", EXAMPLE, "--dir"])
        .arg(dir.path())
        .env("BUILDER_MAX_RESPONSE_BYTES", "100")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("limit"));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
    let out = bin()
        .args(["apply", EXAMPLE, "--dir", "/definitely/not/here"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a folder"));
}

#[test]
fn generate_against_a_fake_provider_writes_the_files() {
    let answer = "<file path=\"src/App.jsx\">\nexport default function App() { return <h1>Hi</h1>; }\n</file>\n<explanation>Hi.</explanation>";
    let fake = openai_fake(&[answer]);
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = bin_with_openai(&fake, "sk-cli-test")
        .args([
            "generate",
            "--prompt",
            "a greeting",
            "--model",
            "openai/gpt-4.1",
            "--dir",
        ])
        .arg(dir.path())
        .env("BUILDER_STATE_DIR", state.path())
        .output()
        .unwrap();
    let r = success_json(&out);
    assert_eq!(
        r["filesCreated"],
        serde_json::json!(["src/App.jsx"]),
        "{r:#}"
    );
    assert_eq!(
        read_in(&dir, "src/App.jsx"),
        "export default function App() { return <h1>Hi</h1>; }\n"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("sk-cli-test"));
}

#[test]
fn command_reference_doc_is_current_and_matches_the_server() {
    let out = bin().args(["commands", "--markdown"]).output().unwrap();
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/commands.md"))
            .unwrap_or_default();
    assert!(
        generated == committed,
        "docs/commands.md is stale: run `cargo run -- commands --markdown > docs/commands.md`"
    );
    // The JSON reference lists exactly the commands the server advertises.
    let out = bin().args(["commands", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<String> = v["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let s = common::TestServer::start(common::bare().folder(dir.path()));
    let advertised: Vec<String> = s.init["capabilities"]["executeCommandProvider"]["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, advertised);
    for c in v["commands"].as_array().unwrap() {
        assert!(c["arguments"].is_object() && c["result"].is_object(), "{c}");
    }
    s.shutdown();
}

/// `apply --serve` applies the example into an empty folder, serves it in a local sandbox,
/// and `sandbox status|kill` from another process find and stop it.
#[test]
fn apply_serve_then_status_and_kill_from_another_process() {
    let registry = Command::new("npm")
        .args(["view", "vite", "version"])
        .output();
    if !registry.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: no npm registry answers (`npm view vite` failed)");
        return;
    }
    use std::io::{BufRead, BufReader, Read};
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut child = bin()
        .args(["apply", EXAMPLE, "--dir"])
        .arg(dir.path())
        .arg("--serve")
        .env("BUILDER_CACHE_DIR", cache.path())
        .env("BUILDER_STATE_DIR", state.path())
        .env("BUILDER_SANDBOX_ISOLATION", "none")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut url = None;
    let mut seen = Vec::new();
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(180)) {
        if let Some(rest) = line.strip_prefix("Preview: ") {
            url = rest.split_whitespace().next().map(String::from);
            break;
        }
        seen.push(line);
    }
    let url = url.unwrap_or_else(|| panic!("no preview URL; stderr:\n{}", seen.join("\n")));
    // The example's own App.jsx is what is served, and the template filled in the rest.
    assert!(
        dir.path().join("package.json").is_file(),
        "template not written"
    );
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "GET /src/App.jsx HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(
        body.contains("Hero"),
        "the example's App.jsx is not served: {body}"
    );

    let v = sandbox_cli("status", dir.path(), state.path());
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["healthy"], true, "{v}");
    assert_eq!(v["url"], Value::String(url.clone()));

    let v = sandbox_cli("kill", dir.path(), state.path());
    assert_eq!(v["killed"], true, "{v}");
    let code = child.wait().unwrap();
    assert!(code.success(), "apply --serve exited with {code}");
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "port still open after kill"
    );
    let v = sandbox_cli("status", dir.path(), state.path());
    assert_eq!(v["active"], false, "{v}");
}

/// `history` and `revert` read and write the same checkpoints as the server: an apply made in
/// an editor session is listed and taken back from the command line, conflicts are left alone
/// unless `--force`, and the revert is itself a checkpoint that can be reverted.
#[test]
fn history_and_revert_from_the_command_line() {
    use common::{checkpoint, file_block, read, write_file, TestServer};
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    write_file(dir.path(), "src/App.jsx", "old app\n");
    write_file(dir.path(), "src/keep.js", "keep\n");
    let s = TestServer::start(common::vscode().folder(dir.path()).state_dir(state.path()));
    let r = s.apply(&format!(
        "{}{}{}<explanation>New app.</explanation>",
        file_block("src/App.jsx", "new app\n"),
        file_block("src/keep.js", "changed keep\n"),
        file_block("src/util.js", "export const u = 1;\n"),
    ));
    let id = checkpoint(&r);
    s.shutdown();
    let cli = |args: &[&str]| {
        let out = bin()
            .env("BUILDER_STATE_DIR", state.path())
            .args(args)
            .arg("--dir")
            .arg(dir.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (code, out, err) = cli(&["history", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let h: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(h.as_array().map(Vec::len), Some(1), "{h}");
    assert_eq!(h[0]["id"], Value::from(id.clone()));
    assert_eq!(h[0]["summary"], Value::from("New app."));
    let (code, out, _) = cli(&["history"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains(&id) && out.contains("+src/util.js") && out.contains("~src/App.jsx"),
        "{out}"
    );

    // Bad input: named, nothing written.
    let (code, _, err) = cli(&["revert", "99999-dead"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("ID") && err.contains("99999-dead"), "{err}");
    let (code, _, err) = cli(&["revert", &id, "--files", "src/nope.js"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--files") && err.contains("src/nope.js"),
        "{err}"
    );
    assert_eq!(read(dir.path(), "src/App.jsx"), "new app\n");

    // A file changed since is a conflict, left alone; the rest is reverted.
    write_file(dir.path(), "src/keep.js", "the user's edit\n");
    let (code, out, err) = cli(&["revert", &id]);
    assert_eq!(code, Some(1), "{out}{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["conflicts"][0]["path"], Value::from("src/keep.js"), "{r}");
    assert_eq!(r["filesDeleted"], serde_json::json!(["src/util.js"]), "{r}");
    assert_eq!(r["appliedVia"], Value::from("disk"), "{r}");
    assert_eq!(read(dir.path(), "src/App.jsx"), "old app\n");
    assert_eq!(read(dir.path(), "src/keep.js"), "the user's edit\n");
    assert!(!dir.path().join("src/util.js").exists());
    let revert_id = checkpoint(&r);

    // --force with --files takes the conflicting file back too.
    let (code, out, err) = cli(&["revert", &id, "--files", "src/keep.js", "--force"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(read(dir.path(), "src/keep.js"), "keep\n");

    // The revert is a checkpoint: reverting it redoes the apply.
    let (code, out, _) = cli(&["history", "--json", "--limit", "2"]);
    assert_eq!(code, Some(0));
    let h: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(h.as_array().map(Vec::len), Some(2), "{h}");
    assert_eq!(h[1]["id"], Value::from(revert_id.clone()), "{h}");
    assert_eq!(h[1]["source"], Value::from("revert"));
    let (code, out, err) = cli(&["revert", &revert_id, "--force"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(read(dir.path(), "src/App.jsx"), "new app\n");
    assert_eq!(read(dir.path(), "src/util.js"), "export const u = 1;\n");
}

#[test]
fn fix_runs_the_app_finds_the_browser_error_and_writes_the_fix() {
    if !common::registry_answers() {
        return;
    }
    let fixed = FIXED_CHILD;
    let answer = format!("<file path=\"src/components/Child.jsx\">{fixed}</file>\n");
    let fake = openai_fake(&[&answer]);
    let f = Folders::new();
    let dir = &f.dir;
    for (p, text) in builder_lsp::sandbox::template::files("react-vite").unwrap() {
        common::write_file(dir.path(), p, text);
    }
    common::write_file(dir.path(), "src/App.jsx", APP_WITH_CHILD);
    let child = throwing_child("cli boom");
    common::write_file(dir.path(), "src/components/Child.jsx", &child);
    let args = ["fix", "--isolation", "none", "--model", "openai/gpt-4.1"];
    let out = f.run(&fake, "sk-cli-fix", &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let r = success_json(&out);
    assert_eq!(r["stopped"], serde_json::json!("clean"), "{r:#}");
    let rounds = r["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 1, "{r:#}");
    assert_first_error(rounds, "src/components/Child.jsx:3: cli boom");
    assert_eq!(read_in(dir, "src/components/Child.jsx"), fixed);
    let prompt = fake.single_request().body.to_string();
    assert!(prompt.contains("cli boom"), "{prompt}");
    assert!(!stderr.contains("sk-cli-fix"));
}

/// `generate --serve --fix --once`: the generation lands in an empty folder, the folder runs in
/// a local sandbox (the template fills in the rest), headless Chromium finds the component
/// that throws, the model's second answer fixes it, and the command stops clean.
#[test]
fn generate_serve_fix_once_fixes_the_generated_app() {
    if !common::registry_answers() {
        return;
    }
    let (app, fixed) = (APP_WITH_CHILD, FIXED_CHILD);
    let broken = throwing_child("generated boom");
    let first = format!(
        "<file path=\"src/App.jsx\">\n{app}</file>\n<file path=\"src/components/Child.jsx\">\n{broken}</file>\n<explanation>An app.</explanation>"
    );
    let second = format!("<file path=\"src/components/Child.jsx\">\n{fixed}</file>\n");
    let fake = openai_fake(&[&first, &second]);
    let f = Folders::new();
    let (dir, state) = (&f.dir, &f.state);
    let t0 = std::time::Instant::now();
    #[rustfmt::skip]
    let args = [
        "generate", "--prompt", "an app with a child component", "--model", "openai/gpt-4.1",
        "--serve", "--fix", "--once", "--isolation", "none",
    ];
    let out = f.run(&fake, "sk-cli-genfix", &args);
    let elapsed = t0.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let r = success_json(&out);
    // The generation's own result, as plain `generate` prints it…
    assert_eq!(
        r["filesCreated"],
        serde_json::json!(["src/App.jsx", "src/components/Child.jsx"]),
        "{r:#}"
    );
    // …plus the sandbox it ran in and the fix loop, shaped as `builder-lsp fix` prints them.
    assert!(
        r["sandbox"]["sandboxId"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{r:#}"
    );
    assert!(
        r["sandbox"]["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://")),
        "{r:#}"
    );
    assert_eq!(r["fixStopped"], "clean", "{r:#}");
    assert_eq!(r["errorsLeft"], serde_json::json!([]), "{r:#}");
    let rounds = r["fixRounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 1, "{r:#}");
    assert_first_error(rounds, "src/components/Child.jsx:3: generated boom");
    assert_eq!(
        rounds[0]["filesChanged"],
        serde_json::json!(["src/components/Child.jsx"])
    );
    // On disk: the generated app, the fix, and the template that filled in the rest.
    assert_eq!(read_in(dir, "src/components/Child.jsx"), fixed);
    assert_eq!(read_in(dir, "src/App.jsx"), app);
    assert!(dir.path().join("package.json").is_file(), "{stderr}");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2, "one generation, one fix");
    assert!(reqs[0].body_text.contains("an app with a child component"));
    assert!(
        reqs[1].body_text.contains("generated boom"),
        "{}",
        reqs[1].body_text
    );
    assert!(
        !stderr.contains("sk-cli-genfix")
            && !String::from_utf8_lossy(&out.stdout).contains("sk-cli-genfix")
    );
    // --once stopped the sandbox and removed its record.
    let v = sandbox_cli("status", dir.path(), state.path());
    assert_eq!(v["active"], false, "{v}");
    let url = r["sandbox"]["url"].as_str().unwrap();
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the preview still answers after --once"
    );
    let fix_line = stderr
        .lines()
        .find(|l| l.starts_with("Fix: "))
        .unwrap_or("(no Fix: line)");
    eprintln!(
        "generate --serve --fix --once: {fix_line}; test wall time {:.1} s",
        elapsed.as_secs_f64()
    );
}

/// `--fix` without `--serve` (and `--once`/`--rounds` without `--fix`) are usage errors (exit 2)
/// naming the flags, refused before any model request or write.
#[test]
fn generate_fix_without_serve_is_a_usage_error() {
    let fake = FakeProvider::start(vec![Reply::status(500, "{}")]);
    let dir = tempfile::tempdir().unwrap();
    for extra in [
        &["--fix"][..],
        &["--serve", "--once"],
        &["--serve", "--rounds", "3"],
    ] {
        let out = bin_with_openai(&fake, "sk-cli-usage")
            .args(["generate", "--prompt", "x", "--model", "openai/gpt-4.1"])
            .args(extra)
            .arg("--dir")
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        // The missing flag is named, and the usage line names it with the one given.
        let missing = if extra == ["--fix"] {
            "--serve"
        } else {
            "--fix"
        };
        assert!(
            err.contains("required arguments were not provided")
                && err.contains(&format!("\n  {missing}\n"))
                && err.contains("--serve")
                && err.contains("--fix"),
            "{extra:?}: {err}"
        );
    }
    assert_eq!(fake.request_count(), 0);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
