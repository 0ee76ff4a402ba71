//! The preview behind a path-prefix proxy (code-server's `/proxy/PORT/`, web IDEs): with
//! `previewBase`, the local sandbox's real Vite serves the app under that path, and a request
//! that arrives without it (a proxy that strips the prefix, or the direct loopback URL) is
//! served the same; a runtime error seen through that base still lands on its file and line.
//! Real npm, real Vite, headless Chromium, the real binary over stdio. Also: without a
//! Chromium, the headless check says what it looked for and what to install.

mod common;
mod fakes;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use builder_lsp::ai::Provider;
use common::*;
use fakes::*;
use serde_json::json;

/// `GET path` on 127.0.0.1:`port` → (status, body).
fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/html,*/*\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

fn port_of(url: &str) -> u16 {
    url.trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

#[test]
fn a_preview_base_serves_the_app_with_and_without_the_prefix() {
    if !registry_answers() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let child = "export default function Child() {\n  const label = 'child';\n  throw new Error('behind the proxy');\n}\n";
    let app = "import Child from './components/Child.jsx';\n\nexport default function App() {\n  return <main><Child /></main>;\n}\n";
    let text = format!(
        "<file path=\"src/App.jsx\">{app}</file>\n<file path=\"src/components/Child.jsx\">{child}</file>\n"
    );
    let fake = FakeProvider::start(vec![Reply::sse(openai_frames(
        &chunk_text(&text, 13),
        "stop",
    ))]);
    let s = TestServer::start(
        vscode()
            .folder(dir.path())
            .sandbox_cache(cache.path())
            .openai_at(&fake.base_url_for(Provider::OpenAi), "sk-test-preview-base")
            .init_options(local_sandbox_options()),
    );

    // Bad bases are refused before any work, naming the field.
    for bad in ["proxy/{{port}}/", "/a b/", "//evil.example/"] {
        let e = s
            .execute(
                "builder.sandbox.create",
                json!({"previewBase": bad, "wait": true}),
            )
            .unwrap_err();
        assert_eq!(e["code"], json!(-32602), "{bad}: {e}");
        assert!(
            e["message"].as_str().unwrap().contains("`previewBase`"),
            "{e}"
        );
    }

    let created = s.create_sandbox(json!({"previewBase": "/proxy/{{port}}/", "wait": true}));
    let url = created["url"].as_str().unwrap().to_string();
    let port = port_of(&url);
    let base = format!("/proxy/{port}/");

    // Through a proxy that keeps the prefix (code-server's /absproxy/), and directly (or a
    // proxy that strips it): the same page, whose URLs all carry the base.
    for path in [base.as_str(), "/"] {
        let (status, html) = get(port, path);
        assert_eq!(status, 200, "GET {path}: {html}");
        assert!(
            html.contains(&format!("{base}@vite/client")),
            "GET {path}: {html}"
        );
        assert!(
            html.contains(&format!("{base}@builder/client.js")),
            "GET {path}: {html}"
        );
    }
    // The modules those URLs name, as a stripping proxy forwards them and as they are asked.
    for path in [
        format!("{base}src/main.jsx"),
        "/src/main.jsx".to_string(),
        format!("{base}@vite/client"),
        "/@vite/client".to_string(),
    ] {
        let (status, body) = get(port, &path);
        assert_eq!(status, 200, "GET {path}: {body}");
        assert!(body.contains("import"), "GET {path}: {body}");
    }

    // A runtime error in a page loaded under the base is located in the workspace file.
    let g = s.generate("a card with a child");
    assert_eq!(g["applied"], json!(true), "{g:#}");
    assert_chromium();
    let c = s.check_sandbox();
    let err = runtime_error(&c, "behind the proxy");
    assert_eq!(err["path"], json!("src/components/Child.jsx"), "{c:#}");
    assert_eq!(err["line"], json!(3), "{c:#}");
    s.execute("builder.sandbox.kill", json!({})).unwrap();
    s.assert_no_panic();
}

/// Without a Chromium the headless check says so (what it looked for, what to install), and
/// the preview's errors are still there through `builder.sandbox.errors`.
#[test]
fn without_chromium_the_check_says_what_to_install() {
    if !registry_answers() {
        return;
    }
    let (_dir, _cache, s) = sandbox_server(|o| {
        o.env("BUILDER_CHROMIUM", "/nonexistent/chromium")
            .init_options(local_sandbox_options())
    });
    s.create_sandbox(json!({"wait": true}));
    let e = s
        .execute("builder.sandbox.check", json!({"screenshot": true}))
        .unwrap_err();
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.starts_with("builder.sandbox.check: no headless Chromium found"),
        "{e}"
    );
    assert!(
        msg.contains("$BUILDER_CHROMIUM") && msg.contains("`chromium` package"),
        "{e}"
    );
    let errors = s.execute("builder.sandbox.errors", json!({})).unwrap();
    assert_eq!(errors["running"], json!(true), "{errors}");
    s.execute("builder.sandbox.kill", json!({})).unwrap();
    s.assert_no_panic();
}
