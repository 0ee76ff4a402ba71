//! Import detection speed: a whole synthetic workspace (10,000 files, ~50 MB) built and checked
//! for missing packages, one file rescanned as an editor would, and `scan_js` on a 5,000-line
//! file. `BENCH_QUICK=1` uses a 1,000-file workspace and fewer rounds (CI).
#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use builder_lsp::packages::{scan_js, PackageIndex};

const PACKAGES: &[&str] = &[
    "react",
    "react-dom",
    "framer-motion",
    "lucide-react",
    "@tanstack/react-query",
    "zustand",
    "clsx",
    "date-fns",
    "axios",
    "zod",
    "@radix-ui/react-dialog",
    "lodash",
];

/// One realistic module of about `target` bytes, varied by `seed`: imports (packages, relative
/// paths, an alias, a type-only one), JSDoc, strings with quotes, a regex, templates and JSX.
fn module(seed: usize, target: usize) -> String {
    let p = |k: usize| PACKAGES[(seed + k) % PACKAGES.len()];
    let mut s = format!(
        "/**\n * Section {seed}: renders the list. Example: import {{ Section }} from './section'\n */\n\
         import React, {{ useState, useEffect }} from 'react'\n\
         import {{ motion }} from '{}'\n\
         import * as Icons from '{}'\n\
         import type {{ Props{seed} }} from '{}'\n\
         import {{ cn }} from '@/lib/utils'\n\
         import Card from '../components/Card{}'\n\
         import './styles.css'\n\
         const fmt = require('{}/format')\n\n",
        p(1),
        p(2),
        p(3),
        seed % 50,
        p(4),
    );
    let mut i = 0;
    while s.len() < target {
        let k = seed.wrapping_mul(31).wrapping_add(i);
        s.push_str(&format!(
            "// Block {i}: don't import 'nothing' here\n\
             export function Item{i}({{ items = [], title }}: {{ items: string[]; title: string }}) {{\n\
             \x20 const [open, setOpen] = useState<boolean>(false)\n\
             \x20 const re = /['\"]+\\/(\\d+)/g; const ratio = items.length / {d} / 2\n\
             \x20 const label = `Item ${{title}} of ${{items.length > 0 ? `${{items[0]}}` : 'none'}}`\n\
             \x20 useEffect(() => {{ if (items.length < {k}) setOpen(true); const lazy = import('./lazy{i}') }}, [items])\n\
             \x20 return (\n\
             \x20   <motion.div className=\"rounded-2xl p-{p} shadow\" data-k='{k}' onClick={{() => setOpen(!open)}}>\n\
             \x20     <h2 className=\"text-xl\">{{title}} — it's part {i}</h2>\n\
             \x20     <p>Don't worry: \"import x from 'y'\" is just text. Café ✨</p>\n\
             \x20     {{items.map((item, idx) => <li key={{idx}}>{{item}}</li>)}}\n\
             \x20   </motion.div>\n\
             \x20 )\n\
             }}\n\n",
            d = k % 7 + 1,
            p = k % 8,
        ));
        i += 1;
    }
    s
}

/// Writes the workspace: a root manifest, a workspace package with its own, and `files` modules
/// of ~5 KB spread over nested folders.
fn workspace(root: &Path, files: usize) -> usize {
    std::fs::write(
        root.join("package.json"),
        r#"{"name":"app","workspaces":["packages/*"],"dependencies":{"react":"^19","react-dom":"^19","framer-motion":"^11","clsx":"^2"}}"#,
    )
    .unwrap();
    std::fs::create_dir_all(root.join("packages/ui")).unwrap();
    std::fs::write(
        root.join("packages/ui/package.json"),
        r#"{"name":"@app/ui","dependencies":{"lucide-react":"^0.4","zod":"^3"}}"#,
    )
    .unwrap();
    std::fs::write(
        root.join("tsconfig.json"),
        r#"{ "compilerOptions": { "paths": { "@/*": ["./src/*"] }, }, }"#,
    )
    .unwrap();
    let mut bytes = 0;
    for n in 0..files {
        let dir = if n % 5 == 0 {
            root.join(format!("packages/ui/src/d{}", n % 40))
        } else {
            root.join(format!("src/features/f{}/d{}", n % 30, n % 7))
        };
        std::fs::create_dir_all(&dir).unwrap();
        let ext = ["tsx", "jsx", "ts", "js"][n % 4];
        let text = module(n, 5 * 1024);
        bytes += text.len();
        std::fs::write(dir.join(format!("m{n}.{ext}")), text).unwrap();
    }
    // Things the walk must skip.
    std::fs::create_dir_all(root.join("node_modules/react")).unwrap();
    std::fs::write(
        root.join("node_modules/react/index.js"),
        module(0, 5 * 1024),
    )
    .unwrap();
    bytes
}

fn stats(name: &str, mut v: Vec<Duration>, extra: &str) {
    v.sort();
    let med = v[v.len() / 2];
    let p90 = v[(v.len() * 9 / 10).min(v.len() - 1)];
    println!(
        "{name:<46} median {:>9.3} ms   p90 {:>9.3} ms   (n={}){extra}",
        med.as_secs_f64() * 1e3,
        p90.as_secs_f64() * 1e3,
        v.len()
    );
}

fn time<R>(f: impl FnOnce() -> R) -> (Duration, R) {
    let t = Instant::now();
    let r = f();
    (t.elapsed(), r)
}

fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
    let (files, build_rounds, small_rounds) = if quick {
        (1_000, 3, 50)
    } else {
        (10_000, 7, 300)
    };
    println!(
        "packages bench ({}), {} threads available",
        if quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let (gen, bytes) = time(|| workspace(&root, files));
    println!(
        "generated {files} files, {:.1} MB in {:.1} s",
        bytes as f64 / 1e6,
        gen.as_secs_f64()
    );

    // Warm the page cache, then time build + missing.
    let idx = PackageIndex::build(&root);
    let first = idx.missing();
    println!(
        "indexed {} files; missing runtime {:?}, type-only {:?}",
        idx.len(),
        first.packages,
        first.type_packages
    );
    let mut builds = Vec::new();
    let mut missings = Vec::new();
    let mut totals = Vec::new();
    for _ in 0..build_rounds {
        let (tb, idx) = time(|| PackageIndex::build(&root));
        let (tm, m) = time(|| idx.missing());
        black_box(m);
        builds.push(tb);
        missings.push(tm);
        totals.push(tb + tm);
    }
    let mb = bytes as f64 / 1e6;
    let mut sorted = totals.clone();
    sorted.sort();
    let tput = mb / sorted[sorted.len() / 2].as_secs_f64();
    stats("workspace: build", builds, "");
    stats("workspace: missing()", missings, "");
    stats(
        "workspace: build + missing()",
        totals,
        &format!("   {tput:.0} MB/s"),
    );

    // Incremental: an edited ~5 KB file rescanned and checked, as on each keystroke.
    let mut idx = PackageIndex::build(&root);
    let path: PathBuf = root.join("src/features/f1/d1/m1.jsx");
    let mut incr = Vec::new();
    for i in 0..small_rounds {
        let text = module(i + 1, 5 * 1024);
        let (t, n) = time(|| {
            idx.update_file(&path, &text);
            let imports = idx.imports(&path).unwrap();
            idx.missing_in(&path, &imports).len()
        });
        black_box(n);
        incr.push(t);
    }
    stats("incremental: update_file + missing_in (5 KB)", incr, "");

    // One big file: 5,000 lines.
    let mut big = String::new();
    let mut seed = 0;
    while big.lines().count() < 5_000 {
        big.push_str(&module(seed, 16 * 1024));
        seed += 1;
    }
    let big: String = big.lines().take(5_000).collect::<Vec<_>>().join("\n");
    let rounds = small_rounds / 3;
    let mut scans = Vec::new();
    for _ in 0..rounds {
        let (t, r) = time(|| scan_js(&big));
        black_box(r);
        scans.push(t);
    }
    let mut s = scans.clone();
    s.sort();
    let mbps = big.len() as f64 / 1e6 / s[s.len() / 2].as_secs_f64();
    stats(
        &format!("scan_js: 5,000 lines ({} KB)", big.len() / 1024),
        scans,
        &format!("   {mbps:.0} MB/s"),
    );
    let big_path = root.join("src/features/f2/d2/Big.tsx");
    let mut diag = Vec::new();
    for _ in 0..rounds {
        let (t, n) = time(|| {
            idx.update_file(&big_path, &big);
            let imports = idx.imports(&big_path).unwrap();
            idx.missing_in(&big_path, &imports).len()
        });
        black_box(n);
        diag.push(t);
    }
    stats("diagnostics: one 5,000-line file end to end", diag, "");
}
