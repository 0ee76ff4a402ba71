//! Throughput of the response parser on a 10 MB multi-file answer, fed the way a model
//! stream arrives (64-byte chunks) and at once. `BENCH_QUICK=1` runs 2 iterations (CI).

use std::hint::black_box;
use std::time::Instant;

use builder_lsp::response::{ParsedResponse, ResponseParser};

const TARGET_BYTES: usize = 10 * 1024 * 1024;
const FILE_BYTES: usize = 32 * 1024;

/// One realistic JSX component of roughly `FILE_BYTES`, varied by `seed`.
fn component(seed: usize) -> String {
    let name = format!("Section{seed}");
    let mut s = format!(
        "import {{ useState, useEffect }} from 'react'\nimport {{ motion }} from 'framer-motion'\nimport {{ ArrowRight, Check }} from 'lucide-react'\n\nexport default function {name}({{ items = [], title }}) {{\n  const [open, setOpen] = useState(false)\n  useEffect(() => {{ if (items.length < 3) setOpen(true) }}, [items])\n  return (\n    <section className=\"relative py-24 bg-gradient-to-b from-slate-900 to-slate-800 text-white\">\n"
    );
    let mut i = 0;
    while s.len() < FILE_BYTES {
        let k = seed.wrapping_mul(31).wrapping_add(i);
        s.push_str(&format!(
            "      <div className=\"container mx-auto px-{p} grid grid-cols-1 md:grid-cols-{c} gap-{g}\">\n        <motion.div initial={{{{ opacity: 0, y: 20 }}}} animate={{{{ opacity: 1, y: 0 }}}} className=\"rounded-2xl shadow-lg p-6 bg-white/5\">\n          <h2 className=\"text-3xl font-bold tracking-tight\">{{title}} — part {i}</h2>\n          <p className=\"mt-4 text-slate-300 leading-relaxed\">Build faster with components that just work. Café ✨ 速い</p>\n          <ul className=\"mt-6 space-y-2\">\n            {{items.map((item, idx) => (\n              <li key={{idx}} className=\"flex items-center gap-2\"><Check className=\"w-4 h-4 text-emerald-400\" /> {{item.label}}</li>\n            ))}}\n          </ul>\n          <button onClick={{() => setOpen(!open)}} disabled={{items.length < {k}}} className=\"mt-8 inline-flex items-center px-5 py-3 rounded-lg bg-indigo-500 hover:bg-indigo-400\">\n            Get started <ArrowRight className=\"ml-2 w-4 h-4\" />\n          </button>\n        </motion.div>\n      </div>\n",
            p = k % 8 + 1,
            c = k % 4 + 1,
            g = k % 6 + 2,
        ));
        i += 1;
    }
    s.push_str("    </section>\n  )\n}\n");
    s
}

fn answer() -> String {
    let mut s = String::from("I'll build the landing page with these components.\n\n");
    let mut n = 0;
    while s.len() < TARGET_BYTES {
        s.push_str(&format!(
            "<file path=\"src/components/Section{n}.jsx\">\n{}</file>\n\n",
            component(n)
        ));
        n += 1;
    }
    s.push_str("<packages>framer-motion, lucide-react</packages>\n<command>npm run build</command>\n<explanation>Landing page with many sections.</explanation>\n");
    s
}

fn chunks(text: &str, size: usize) -> Vec<&str> {
    let mut out = Vec::with_capacity(text.len() / size + 1);
    let mut i = 0;
    while i < text.len() {
        let mut e = (i + size).min(text.len());
        while !text.is_char_boundary(e) {
            e += 1;
        }
        out.push(&text[i..e]);
        i = e;
    }
    out
}

fn run(pieces: &[&str]) -> ParsedResponse {
    let mut parser = ResponseParser::new();
    let mut events = Vec::new();
    for piece in pieces {
        parser.feed(piece, &mut events);
        events.clear();
    }
    parser.finish()
}

/// Median MB/s (10^6 bytes per second) over `iters` runs, and the last result.
fn measure(bytes: usize, iters: usize, pieces: &[&str]) -> (f64, ParsedResponse) {
    let mut rates = Vec::with_capacity(iters);
    let mut last = ParsedResponse::default();
    for _ in 0..iters {
        let start = Instant::now();
        last = black_box(run(black_box(pieces)));
        let secs = start.elapsed().as_secs_f64();
        rates.push(bytes as f64 / secs / 1e6);
    }
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], last)
}

fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
    let iters = if quick { 2 } else { 15 };
    let text = answer();
    let small = chunks(&text, 64);
    let whole = [text.as_str()];

    let (chunked_rate, chunked) = measure(text.len(), iters, &small);
    let (whole_rate, one_shot) = measure(text.len(), iters, &whole);
    assert_eq!(chunked, one_shot, "chunking changed the result");
    assert!(chunked.files.iter().all(|f| f.complete));

    println!(
        "parser: {:.1} MB answer, {} files, {} iterations",
        text.len() as f64 / 1e6,
        chunked.files.len(),
        iters
    );
    println!("parser 64-byte chunks: {chunked_rate:.0} MB/s (median)");
    println!("parser one-shot:       {whole_rate:.0} MB/s (median)");
}
