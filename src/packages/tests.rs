//! Detection cases across the scanner, specifiers, aliases, manifests and the index.

use std::path::{Path, PathBuf};

use super::scan::{scan_css, scan_file, scan_js, scan_script, source_kind, ImportKind, SourceKind};
use super::*;

use ImportKind::*;

/// (specifier, kind, type_only) of every import, in order, and a check that each range holds
/// exactly its specifier.
fn found(src: &str, imports: Vec<Import>) -> Vec<(String, ImportKind, bool)> {
    for i in &imports {
        assert_eq!(
            src.get(i.range.clone()),
            Some(i.specifier.as_str()),
            "range of {i:?}"
        );
    }
    imports
        .into_iter()
        .map(|i| (i.specifier, i.kind, i.type_only))
        .collect()
}

fn js(src: &str) -> Vec<(String, ImportKind, bool)> {
    found(src, scan_js(src))
}

fn ts(src: &str) -> Vec<(String, ImportKind, bool)> {
    found(src, scan_file(Path::new("x.ts"), src))
}

fn e(spec: &str, kind: ImportKind) -> (String, ImportKind, bool) {
    (spec.to_owned(), kind, false)
}

fn t(spec: &str, kind: ImportKind) -> (String, ImportKind, bool) {
    (spec.to_owned(), kind, true)
}

fn specs(src: &str) -> Vec<String> {
    scan_js(src).into_iter().map(|i| i.specifier).collect()
}

// --- static forms -------------------------------------------------------------------------

#[test]
fn all_static_forms() {
    let src = "import a from 'a'\nimport {b, c as d} from \"b\"\nimport * as ns from 'c'\n\
               import x, {y} from 'd'\nimport z, * as w from 'e'\nimport 'f'\nimport {} from 'g'";
    assert_eq!(
        js(src),
        vec![
            e("a", Static),
            e("b", Static),
            e("c", Static),
            e("d", Static),
            e("e", Static),
            e("f", SideEffect),
            e("g", Static),
        ]
    );
}

#[test]
fn multi_line_import_list_with_comments() {
    let src = "import {\n  a, // 'x'\n  b as c, /* from 'y' */\n  \"d-e\" as f,\n} from 'multi';";
    assert_eq!(js(src), vec![e("multi", Static)]);
}

#[test]
fn exact_byte_ranges() {
    let src = "import x from 'abc'";
    assert_eq!(scan_js(src)[0].range, 15..18);
    let src = "const a = require(\"@s/p\")\nimport('dyn')";
    let r = scan_js(src);
    assert_eq!(r[0].range, 19..23);
    assert_eq!(r[1].range, 34..37);
    let src = "export * from `tpl`; import(`tpl2`)";
    // a template after `from` is not valid syntax; the dynamic one is.
    assert_eq!(js(src), vec![e("tpl2", Dynamic)]);
    assert_eq!(scan_js(src)[0].range, 29..33);
}

#[test]
fn export_from_forms() {
    let src = "export * from 'a'; export {x} from 'b'; export * as ns from 'c';\n\
               export { default } from 'd'; export * as default from 'e';\n\
               export {y}; export const z = 'f'; export default 'g'; export { h as 'i' }";
    assert_eq!(
        js(src),
        vec![
            e("a", ExportFrom),
            e("b", ExportFrom),
            e("c", ExportFrom),
            e("d", ExportFrom),
            e("e", ExportFrom)
        ]
    );
}

#[test]
fn import_attributes() {
    let src = "import data from './d.json' with { type: 'json' };\nconst m = import('x', { with: { type: 'json' } })";
    assert_eq!(js(src), vec![e("./d.json", Static), e("x", Dynamic)]);
}

#[test]
fn open_list_while_typing_does_not_swallow_the_next_import() {
    assert_eq!(js("import {a, b\nimport c from 'd'"), vec![e("d", Static)]);
    assert_eq!(js("import x from\nimport 'y'"), vec![e("y", SideEffect)]);
    assert_eq!(js("import x\nrequire('z')"), vec![e("z", Require)]);
}

#[test]
fn import_at_end_of_input() {
    assert!(js("import").is_empty());
    assert!(js("import {").is_empty());
    assert!(js("import x from").is_empty());
    assert!(js("require(").is_empty());
    assert!(js("import('").is_empty());
}

// --- type-only ----------------------------------------------------------------------------

#[test]
fn import_type_forms() {
    let src = "import type {X} from 'a'; import type X from 'b'; import type * as N from 'c';\n\
               import type D, {E} from 'd'";
    assert_eq!(
        js(src),
        vec![
            t("a", Static),
            t("b", Static),
            t("c", Static),
            t("d", Static)
        ]
    );
}

#[test]
fn mixed_type_specifiers() {
    let src = "import {type A, type B} from 'all-type';\nimport {type A, B} from 'mixed';\n\
               import D, {type E} from 'default-rt';\nimport {type A as Z} from 'renamed-type';";
    assert_eq!(
        js(src),
        vec![
            t("all-type", Static),
            e("mixed", Static),
            e("default-rt", Static),
            t("renamed-type", Static)
        ]
    );
}

#[test]
fn bindings_named_type_are_runtime() {
    let src =
        "import type from 'typ'; import {type} from 'typ2'; import {type as t} from 'typ3';\n\
               import type, {a} from 'typ4'";
    assert_eq!(
        js(src),
        vec![
            e("typ", Static),
            e("typ2", Static),
            e("typ3", Static),
            e("typ4", Static)
        ]
    );
}

#[test]
fn export_type_forms() {
    let src = "export type {X} from 't1'; export type * from 't2'; export type * as N from 't3';\n\
               export type Y = import('t4').Z; export {type A} from 't5'; export {type A, b} from 't6'";
    assert_eq!(
        js(src),
        vec![
            t("t1", ExportFrom),
            t("t2", ExportFrom),
            t("t3", ExportFrom),
            t("t4", Dynamic),
            t("t5", ExportFrom),
            e("t6", ExportFrom)
        ]
    );
}

#[test]
fn typeof_import_is_type_only() {
    let src = "type M = typeof import('m');\nlet v: Promise<typeof import('n')>;";
    assert_eq!(js(src), vec![t("m", Dynamic), t("n", Dynamic)]);
}

#[test]
fn import_type_reference_in_generics_is_type_only() {
    let src = "let a: Array<import('x').T> = [];\nfunction f(): import('y').Y<Z> {}\nconst g = (p: import('w').P) => p";
    assert_eq!(
        ts(src),
        vec![t("x", Dynamic), t("y", Dynamic), t("w", Dynamic)]
    );
    assert_eq!(
        js(src),
        vec![t("x", Dynamic), t("y", Dynamic), t("w", Dynamic)]
    );
}

#[test]
fn runtime_dynamic_imports() {
    let src = "const m = await import('lazy');\nimport('then').then(x => x);\nimport(\"dq\").catch(() => {})";
    assert_eq!(
        js(src),
        vec![e("lazy", Dynamic), e("then", Dynamic), e("dq", Dynamic)]
    );
}

#[test]
fn import_equals() {
    let src = "import fs = require('fs-extra');\nimport type T = require('tt');\nexport import E = require('ee');\nimport A = B.C;";
    assert_eq!(
        ts(src),
        vec![
            e("fs-extra", ImportEquals),
            t("tt", ImportEquals),
            e("ee", ImportEquals)
        ]
    );
}

// --- dynamic and require edge cases -------------------------------------------------------

#[test]
fn dynamic_import_needs_a_literal() {
    let src = "import(name); import(`./x/${n}`); import('a' + b); import(\n  /* c */ 'ok'\n)";
    assert_eq!(js(src), vec![e("ok", Dynamic)]);
}

#[test]
fn import_meta_is_not_an_import() {
    let src = "const u = import.meta.env.VITE_X;\nimport.meta.glob('./*.js');\nnew Worker(new URL('./w.js', import.meta.url))";
    assert!(js(src).is_empty());
}

#[test]
fn require_forms() {
    let src = "const a = require('a'); const {b} = require(\"b\"); require(`c`);\n\
               require(`d${x}`); require.resolve('e'); const r = require; r('f'); require('g', 1)";
    assert_eq!(
        js(src),
        vec![e("a", Require), e("b", Require), e("c", Require)]
    );
}

#[test]
fn members_named_import_or_require_are_not_imports() {
    let src = "obj.import('x'); obj?.require('y'); a.b.require('z');\n\
               const o = { import: 'q', require: 'r', 'import': 's' };\n\
               class A { #import() {} x() { return this.#import('p') } }";
    assert!(js(src).is_empty(), "{:?}", js(src));
}

#[test]
fn methods_named_require_and_import() {
    let src = "class A { require(x) { return x } import() {} static import = 1 }\nconst k = { import() { return 1 } }";
    assert!(js(src).is_empty());
}

#[test]
fn optional_chaining_and_ternary() {
    let src = "a?.b; c ? import('yes') : d; e?.[0]; f?.(1); g?.5:h";
    assert_eq!(js(src), vec![e("yes", Dynamic)]);
}

// --- comments and strings -----------------------------------------------------------------

#[test]
fn line_comment() {
    assert_eq!(
        js("// import x from 'a'\nimport y from 'b'"),
        vec![e("b", Static)]
    );
}

#[test]
fn block_comment() {
    assert_eq!(
        js("/* import 'a' */ import 'b' /* require('c')\n */"),
        vec![e("b", SideEffect)]
    );
}

#[test]
fn jsdoc_comment() {
    let src =
        "/**\n * @example import x from 'a'\n * @type {import('b').T}\n */\nconst c = require('c')";
    assert_eq!(js(src), vec![e("c", Require)]);
}

#[test]
fn strings_that_look_like_imports() {
    let src = "const s = \"import x from 'a'\"; const t = 'require(\"b\")'; const u = 'it\\'s import(\"c\")'";
    assert!(js(src).is_empty());
}

#[test]
fn comment_openers_inside_strings() {
    let src = "const s = \"/*\"; import 'a'; // */\nconst u = 'http://x'; import 'b'";
    assert_eq!(js(src), vec![e("a", SideEffect), e("b", SideEffect)]);
}

#[test]
fn template_text_is_not_code() {
    assert!(js("const s = `import x from 'a'\nrequire('b')`").is_empty());
}

#[test]
fn dynamic_import_inside_template_substitution() {
    assert_eq!(js("const s = `${ import('x') }`"), vec![e("x", Dynamic)]);
}

#[test]
fn nested_templates_strings_and_braces() {
    let src = "const s = `a ${ `b ${ require('y') } c` } d ${ {a: '}'}.a } import('no')`;\nimport 'after'";
    assert_eq!(js(src), vec![e("y", Require), e("after", SideEffect)]);
    let src = "`${ '}' } ${ \"`\" } ${ `}` }`; import 'z'";
    assert_eq!(js(src), vec![e("z", SideEffect)]);
}

#[test]
fn line_comment_inside_substitution() {
    assert!(js("`${ a // }\n } import('x')`").is_empty());
}

#[test]
fn escapes_in_strings_and_templates() {
    let src = "const a = 'x\\'import(\"n\")'; const b = `\\${import('m')}`; import 'k'";
    assert_eq!(js(src), vec![e("k", SideEffect)]);
}

// --- regex versus division ----------------------------------------------------------------

#[test]
fn regex_with_quotes() {
    assert_eq!(
        js("const r = /'import x from \"a\"'/g; import 'b'"),
        vec![e("b", SideEffect)]
    );
}

#[test]
fn regex_with_import_word() {
    assert!(js("x = /import\\('a'\\)/.test(s)").is_empty());
}

#[test]
fn regex_with_slash_in_class() {
    assert_eq!(
        js("const r = /[/'\"]/; import 'q'"),
        vec![e("q", SideEffect)]
    );
}

#[test]
fn regex_after_open_paren() {
    assert_eq!(
        js("s.replace(/\"/g, '\\''); import 'k'"),
        vec![e("k", SideEffect)]
    );
}

#[test]
fn regex_after_return_and_case() {
    assert!(js("function f(s) { return /'/.test(s) || 'import \"x\"' }").is_empty());
    assert!(js("switch (s) { case /'/.source: x = 'import \"y\"' }").is_empty());
    assert!(js("x = typeof /'/ + 'import \"z\"'").is_empty());
}

#[test]
fn division_after_identifier() {
    assert_eq!(
        js("let r = a / b; const s = '/'; import 'c'"),
        vec![e("c", SideEffect)]
    );
}

#[test]
fn division_after_paren_bracket_and_number() {
    assert_eq!(
        js("const x = (a + b) / 2; const y = '/'; import 'k'"),
        vec![e("k", SideEffect)]
    );
    assert_eq!(
        js("x = arr[0] / 2; y = '/'; import 'l'"),
        vec![e("l", SideEffect)]
    );
    assert_eq!(
        js("x = 10 / 2; y = '/'; import 'm'"),
        vec![e("m", SideEffect)]
    );
    assert_eq!(
        js("x = a++ / 2; y = '/'; import 'n'"),
        vec![e("n", SideEffect)]
    );
}

#[test]
fn division_after_this_and_keyword_named_property() {
    assert_eq!(
        js("x = this / 2; y = '/'; import 'a'"),
        vec![e("a", SideEffect)]
    );
    assert_eq!(
        js("x = o.return / 2; y = '/'; import 'b'"),
        vec![e("b", SideEffect)]
    );
}

// --- JSX ----------------------------------------------------------------------------------

/// JSX text, attributes and nested expressions hide the import-like words inside them.
#[test]
fn jsx_children_and_attributes_are_not_code() {
    let cases = [
        (
            "jsx_text_with_apostrophe",
            "const A = () => <p>Don't do it</p>; const s = 'import \"y\"';\nimport 'real'",
            vec![e("real", SideEffect)],
        ),
        (
            "jsx_text_with_import_words",
            "function A() { return <div>import React from 'react'; it's require('x')</div> }\nimport 'z'",
            vec![e("z", SideEffect)],
        ),
        (
            "jsx_attribute_strings",
            "<a title=\"it's\" href='x\"y' data-u=\"//cdn\">{require('inner')}</a>",
            vec![e("inner", Require)],
        ),
        (
            "jsx_nested_expressions_and_elements",
            "const L = () => <ul>{items.map(i => <li key={i}>{i > 0 ? 'a' : \"b's\"} can't</li>)}</ul>;\nimport 'after'",
            vec![e("after", SideEffect)],
        ),
        (
            "jsx_fragments_self_closing_and_division_after",
            "const F = () => <><Foo bar={1} /><Bar/>it's</>; const x = a / b; y = '/'; import 'k'",
            vec![e("k", SideEffect)],
        ),
        (
            "jsx_comment_child_and_string_child",
            "<div>{/* import 'x' */}{'it\\'s'}{\"{\"}</div>; import('y')",
            vec![e("y", Dynamic)],
        ),
        (
            "jsx_in_ternary_and_logical",
            "const v = ok ? <A/> : <B>it's</B>; const w = ok && <C>won't</C>; import 'k'",
            vec![e("k", SideEffect)],
        ),
        (
            "jsx_spread_and_member_tags",
            "<motion.div {...props} initial={{ opacity: 0 }}>Let's go</motion.div>; import 'framer'",
            vec![e("framer", SideEffect)],
        ),
    ];
    for (name, src, want) in cases {
        assert_eq!(js(src), want, "{name}");
    }
}

#[test]
fn tsx_generic_arrow_functions() {
    assert_eq!(
        js("const f = <T,>(x: T) => x; import 'g'"),
        vec![e("g", SideEffect)]
    );
    assert_eq!(
        js("const f = <T extends object>(x: T) => x; import 'h'"),
        vec![e("h", SideEffect)]
    );
    assert_eq!(
        js("let f: <T>(x: T) => T = id; import 'i'"),
        vec![e("i", SideEffect)]
    );
    assert_eq!(
        js("const f = <T = unknown>(x: T) => x; import 'j'"),
        vec![e("j", SideEffect)]
    );
}

#[test]
fn undone_tag_guess_neither_loses_nor_repeats_imports() {
    // `<A b={…} ,>` looks like a tag until the comma; the import inside is found once.
    let src = "x = <A b={require('x')} ,> 1; const y = <B c={<i>it's</i>} ,> 2; import 'k'";
    assert_eq!(js(src), vec![e("x", Require), e("k", SideEffect)]);
}

#[test]
fn ts_generic_calls_and_casts() {
    let src = "const [v] = useState<string>('import'); foo<Bar>('x');\nconst a = require('a') as any; import b from 'b'";
    assert_eq!(js(src), vec![e("a", Require), e("b", Static)]);
    // In .ts, `<any>x` is an assertion, not a tag.
    let src = "const w = (<any>window).x; const c = <string>require('c'); import 'd'";
    assert_eq!(ts(src), vec![e("c", Require), e("d", SideEffect)]);
}

#[test]
fn comparisons_are_not_jsx() {
    let src = "for (let i = 0; i <n; i++) { if (a <b) x = 'it\\'s' }\nimport 'k'";
    assert_eq!(js(src), vec![e("k", SideEffect)]);
}

// --- decorators, declarations and other syntax --------------------------------------------

#[test]
fn decorators() {
    let src = "@Component({ selector: 'import x' })\nclass A { @Input() x = require('dec') }";
    assert_eq!(js(src), vec![e("dec", Require)]);
}

#[test]
fn declare_module_is_not_an_import() {
    assert!(
        ts("declare module 'foo' { export const x: number }\ndeclare module '*.svg';").is_empty()
    );
}

#[test]
fn shebang_line() {
    assert_eq!(
        js("#!/usr/bin/env node --require='x'\nimport 'a'"),
        vec![e("a", SideEffect)]
    );
}

#[test]
fn bom_crlf_and_unicode() {
    let src = "\u{feff}import 'b'";
    assert_eq!(scan_js(src)[0].range, 11..12);
    let src = "import a from 'a'\r\n// c 'x'\r\nimport 'b'\r\n";
    assert_eq!(js(src), vec![e("a", Static), e("b", SideEffect)]);
    let src = "const café = \"🎉 import 'x'\"; const ñ = 1 / 2; const s = '/'; import 'ü-pkg'";
    let r = scan_js(src);
    assert_eq!(r.len(), 1);
    assert_eq!(&src[r[0].range.clone()], "ü-pkg");
    assert_eq!(r[0].range.start, src.find("ü-pkg").unwrap());
}

#[test]
fn unicode_whitespace_separates_tokens() {
    assert_eq!(js("import\u{a0}'x'"), vec![e("x", SideEffect)]);
    assert_eq!(js("x\u{2028}import 'y'"), vec![e("y", SideEffect)]);
}

// --- stylesheets and components -----------------------------------------------------------

#[test]
fn css_imports() {
    let src = "@import 'pkg/x.css';\n@import url(\"quoted\");\n@import url( bare/y.css );\n\
               @IMPORT \"tailwindcss\" layer(base);\n@plugin \"@tailwindcss/typography\";\n\
               @use 'sass:math';\n@import 'a', 'b';";
    let r = found(src, scan_css(src));
    let names: Vec<&str> = r.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "pkg/x.css",
            "quoted",
            "bare/y.css",
            "tailwindcss",
            "@tailwindcss/typography",
            "sass:math",
            "a",
            "b"
        ]
    );
    assert!(r.iter().all(|x| x.1 == CssImport && !x.2));
}

#[test]
fn css_comments_and_strings() {
    let src = "/* @import 'no'; */\n// @import 'no2';\na::after { content: \"@import 'no3'\"; background: url(http://x/y.png) }\n@import 'yes';";
    let r = found(src, scan_css(src));
    assert_eq!(r, vec![e("yes", CssImport)]);
}

#[test]
fn vue_and_svelte_blocks() {
    let src = "<template><p>Don't import 'x'</p></template>\n<script setup lang=\"ts\">\nimport { ref } from 'vue'\nconst a = <any>b\n</script>\n<style>@import 'tw.css';</style>";
    let r = found(src, scan_file(Path::new("A.vue"), src));
    assert_eq!(r, vec![e("vue", Static), e("tw.css", CssImport)]);
    let src = "<script>\n  import { onMount } from 'svelte';\n</script>\n<h1>it's</h1>";
    assert_eq!(
        found(src, scan_file(Path::new("A.svelte"), src)),
        vec![e("svelte", Static)]
    );
}

#[test]
fn source_kinds() {
    for p in [
        "a.js", "a.jsx", "a.mjs", "a.cjs", "a.ts", "a.tsx", "a.mts", "a.cts", "a.vue", "a.svelte",
    ] {
        assert_eq!(source_kind(Path::new(p)), SourceKind::Js, "{p}");
    }
    for p in ["a.css", "a.scss", "a.sass", "a.less"] {
        assert_eq!(source_kind(Path::new(p)), SourceKind::Css, "{p}");
    }
    for p in ["a.json", "a.md", "Makefile", "a.html"] {
        assert_eq!(source_kind(Path::new(p)), SourceKind::Other, "{p}");
    }
    assert!(scan_file(Path::new("a.md"), "import 'x'").is_empty());
}

// --- robustness ---------------------------------------------------------------------------

const TRICKY: &str = "#!/usr/bin/env node\n\u{feff}import a, {type B, c as d} from 'a'\n\
    const s = `x ${ `y ${ import('b') }` } '\"` + \"it's\" + 'q\"'\n\
    const r = /[/'\"]\\/ /g.test(s) / 2 / 3\n\
    export default () => <div a=\"'\" b={'{'}>Don't {require('c')} <T,>é🎉</div>\n\
    /* unterminated? */ // end\nlet f = <T extends U>(x) => x < y\nimport x = require('d')\n\
    @import url(\"e\"); <script>import 'f'</script> `unterminated ${ {";

fn check_ranges(src: &str) {
    for imports in [
        scan_js(src),
        scan_script(src, false),
        scan_css(src),
        scan_file(Path::new("x.vue"), src),
    ] {
        for i in imports {
            assert_eq!(src.get(i.range.clone()), Some(i.specifier.as_str()));
        }
    }
}

#[test]
fn every_prefix_of_a_tricky_file() {
    let mut n = 0;
    for (i, _) in TRICKY.char_indices().chain([(TRICKY.len(), ' ')]) {
        check_ranges(&TRICKY[..i]);
        check_ranges(&TRICKY[i..]);
        n += 1;
    }
    assert!(n > 300);
    // And the whole file is read right.
    let all: Vec<String> = specs(TRICKY);
    assert_eq!(all, ["a", "b", "c", "d"]);
}

#[test]
fn random_input_never_panics() {
    const ALPHABET: &[&str] = &[
        "'",
        "\"",
        "`",
        "/",
        "*",
        "{",
        "}",
        "${",
        "<",
        ">",
        "</",
        "/>",
        "(",
        ")",
        "[",
        "]",
        "\\",
        "\n",
        "\r",
        " ",
        "import",
        "require",
        "export",
        "type",
        "from",
        "x",
        "=",
        ",",
        ".",
        "?.",
        "é",
        "🎉",
        "#",
        "@import ",
        "url(",
        ";",
        "<script>",
        "</script>",
        "\u{a0}",
        "\0",
        "1",
        "return",
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let len = (rnd() % 60) as usize;
        let s: String = (0..len)
            .map(|_| ALPHABET[(rnd() % ALPHABET.len() as u64) as usize])
            .collect();
        check_ranges(&s);
    }
    // Raw bytes, repaired into text the way the index reads undecodable files.
    for _ in 0..500 {
        let bytes: Vec<u8> = (0..(rnd() % 200)).map(|_| rnd() as u8).collect();
        check_ranges(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn deeply_nested_jsx_guesses_stay_linear() {
    // Every `<a {` opens a guessed tag inside the last one's attribute; all are undone.
    let src = format!("{}x,{}", "<a {".repeat(5000), "}".repeat(5000));
    let start = std::time::Instant::now();
    check_ranges(&src);
    assert!(start.elapsed().as_secs() < 5, "took {:?}", start.elapsed());
    // Guesses that fail one level after another would rescan exponentially without a budget.
    let src = format!("{}x{}import 'ok'", "<a b={".repeat(40), "} ,>".repeat(40));
    let start = std::time::Instant::now();
    assert_eq!(specs(&src), ["ok"]);
    let big = src.repeat(2000);
    check_ranges(&big);
    assert!(start.elapsed().as_secs() < 5, "took {:?}", start.elapsed());
    let src = format!("{}{}import 'ok'", "(".repeat(10000), "{".repeat(10000));
    assert_eq!(specs(&src), ["ok"]);
}

// --- specifiers through the scanner -------------------------------------------------------

#[test]
fn scoped_subpaths_queries_and_builtins() {
    let src = "import a from '@org/pkg/sub'; import 'lodash/map'; import u from './x.svg?url';\n\
               import c from 'pkg/x.css?inline'; import fs from 'node:fs'; import p from 'path';\n\
               import fp from 'fs/promises'; import t from 'node:test'; import h from 'https://esm.sh/x'";
    let a = Aliases::default();
    let imports = scan_js(src);
    let pkgs: Vec<&str> = imports
        .iter()
        .filter_map(|i| package_name(&i.specifier, &a))
        .collect();
    assert_eq!(pkgs, ["@org/pkg", "lodash", "pkg"]);
}

// --- the index ----------------------------------------------------------------------------

fn write(root: &Path, rel: &str, text: &str) -> PathBuf {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn monorepo_each_file_checks_its_own_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "package.json",
        r#"{"name": "root", "workspaces": ["packages/*"], "devDependencies": {"vitest": "^2"}}"#,
    );
    write(
        root,
        "packages/a/package.json",
        r#"{"name": "@my/a", "dependencies": {"x": "1"}}"#,
    );
    write(
        root,
        "packages/b/package.json",
        r#"{"name": "@my/b", "dependencies": {}}"#,
    );
    let a_file = write(
        root,
        "packages/a/src/a.ts",
        "import x from 'x'\nimport {test} from 'vitest'\nimport b from '@my/b'",
    );
    let root_file = write(root, "scripts/run.js", "const x = require('x')");
    write(
        root,
        "packages/b/index.ts",
        "import y from 'y'\nimport type {Z} from 'zz'\nimport type {Y} from 'y'",
    );
    let idx = PackageIndex::build(root);
    assert_eq!(idx.len(), 3);

    let a_imports = idx.imports(&a_file).unwrap();
    assert!(
        idx.missing_in(&a_file, &a_imports).is_empty(),
        "x declared by packages/a; vitest by the root; @my/b is local"
    );

    let root_missing = idx.missing_in(&root_file, &idx.imports(&root_file).unwrap());
    assert_eq!(root_missing.len(), 1);
    assert_eq!(root_missing[0].package, "x");
    assert_eq!(
        root_missing[0].manifest.as_deref(),
        Some(root.join("package.json").as_path())
    );

    let m = idx.missing();
    assert_eq!(m.packages, ["x", "y"]);
    assert_eq!(m.type_packages, ["zz"], "y is also a runtime import");
    assert_eq!(m.imports, ["@my/b", "vitest", "x", "y", "zz"]);
}

#[test]
fn no_manifest_reports_everything_against_none() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "src/main.js",
        "import React from 'react'\nimport './local'",
    );
    let idx = PackageIndex::build(dir.path());
    let m = idx.missing_in(&f, &idx.imports(&f).unwrap());
    assert_eq!(m.len(), 1);
    assert_eq!(
        (m[0].package.as_str(), m[0].manifest.clone()),
        ("react", None)
    );
    assert_eq!(m[0].import.range, 19..24);
}

#[test]
fn build_skips_ignored_dirs_symlinks_and_large_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "package.json", "{}");
    write(root, "src/ok.js", "import 'kept'");
    for d in [
        "node_modules/p",
        ".git",
        "dist",
        "build",
        ".next",
        "out",
        "coverage",
        ".cache",
    ] {
        write(root, &format!("{d}/x.js"), "import 'skipped'");
    }
    write(
        root,
        "src/big.js",
        &format!("import 'big'\n{}", "x".repeat(2 * 1024 * 1024 + 1)),
    );
    write(root, "src/readme.md", "import 'md'");
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.join("src/ok.js"), root.join("src/link.js")).unwrap();
    let idx = PackageIndex::build(root);
    assert_eq!(idx.missing().packages, ["kept"]);
    assert_eq!(idx.len(), 1);
}

#[test]
fn incremental_updates_and_manifest_reload() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pj = write(
        root,
        "package.json",
        r#"{"dependencies": {"react": "^19"}}"#,
    );
    let f = write(root, "src/App.jsx", "import React from 'react'");
    let mut idx = PackageIndex::build(root);
    assert!(idx.missing().packages.is_empty());

    idx.update_file(&f, "import React from 'react'\nimport axios from 'axios'");
    assert_eq!(idx.missing().packages, ["axios"]);
    idx.update_file(Path::new("src/New.tsx"), "import {z} from 'zod'");
    assert_eq!(idx.missing().packages, ["axios", "zod"]);
    idx.update_file(&root.join("node_modules/x/i.js"), "import 'nope'");
    idx.update_file(&root.join("notes.txt"), "import 'nope'");
    assert_eq!(idx.missing().packages, ["axios", "zod"]);

    std::fs::write(&pj, r#"{"dependencies": {"react": "^19", "axios": "^1"}}"#).unwrap();
    idx.reload_manifest(&pj);
    assert_eq!(idx.missing().packages, ["zod"]);

    // A half-typed package.json keeps the last good version.
    std::fs::write(&pj, r#"{"dependencies": {"#).unwrap();
    idx.reload_manifest(&pj);
    assert_eq!(idx.missing().packages, ["zod"]);
    assert_eq!(idx.manifest_errors().len(), 1);

    idx.remove_file(Path::new("src/New.tsx"));
    assert!(idx.missing().packages.is_empty());

    std::fs::remove_file(&pj).unwrap();
    idx.reload_manifest(&pj);
    assert_eq!(idx.missing().packages, ["axios", "react"]);
}

#[test]
fn broken_manifest_without_history_reports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "package.json", "{ nope");
    let f = write(dir.path(), "a.js", "import 'lodash'");
    let idx = PackageIndex::build(dir.path());
    assert!(idx.missing_in(&f, &idx.imports(&f).unwrap()).is_empty());
    assert!(idx.manifest_errors()[0].1.contains("not valid JSON"));
}

#[test]
fn aliases_from_vite_and_tsconfig_in_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "package.json", "{}");
    write(
        root,
        "vite.config.ts",
        "export default defineConfig({ resolve: { alias: { '@components': path.resolve(__dirname, 'src/c') } } })",
    );
    write(
        root,
        "tsconfig.json",
        "{\n  // comment\n  \"compilerOptions\": { \"paths\": { \"@/*\": [\"./src/*\"], \"~/*\": [\"./*\"], \"#lib\": [\"./lib\"], }, },\n}",
    );
    write(
        root,
        "src/a.tsx",
        "import B from '@components/button'\nimport x from '@/x'\nimport y from '~/y'\nimport l from '#lib'\nimport q from 'qq'",
    );
    let idx = PackageIndex::build(root);
    assert_eq!(idx.missing().packages, ["qq"]);
}

#[test]
fn css_imports_in_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "package.json",
        r#"{"devDependencies": {"tailwindcss": "4"}}"#,
    );
    write(root, "src/_variables.scss", "$x: 1;");
    write(root, "src/theme.css", "");
    write(
        root,
        "src/main.scss",
        "@import 'variables';\n@import 'theme';\n@import 'tailwindcss';\n@import '~bootstrap/scss/bootstrap';\n@import url('https://fonts.googleapis.com/css?family=Inter');\n@import './local.css';",
    );
    let idx = PackageIndex::build(root);
    assert_eq!(idx.missing().packages, ["bootstrap"]);
}

#[test]
fn detect_over_an_explicit_file_map() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "package.json", r#"{"dependencies": {"react": "19"}}"#);
    let files = vec![
        (PathBuf::from("src/App.jsx"), "import React from 'react'\nimport { motion } from 'framer-motion'\nimport type { X } from 'only-types'\nimport '@/styles.css'".to_string()),
        (PathBuf::from("src/lib.ts"), "export * from 'zustand/middleware'\nimport fs from 'node:fs'".to_string()),
        (PathBuf::from("tsconfig.json"), "{ \"compilerOptions\": { \"paths\": { \"@/*\": [\"./src/*\"] } } }".to_string()),
        (PathBuf::from("README.md"), "import 'nothing'".to_string()),
    ];
    let m = detect(&files, root);
    assert_eq!(m.packages, ["framer-motion", "zustand"]);
    assert_eq!(m.type_packages, ["only-types"]);
    assert_eq!(
        m.imports,
        [
            "@/styles.css",
            "framer-motion",
            "node:fs",
            "only-types",
            "react",
            "zustand/middleware"
        ]
    );

    // A package.json in the map replaces the one on disk.
    let mut with_manifest = files.clone();
    with_manifest.push((
        PathBuf::from("package.json"),
        r#"{"dependencies": {"react": "19", "framer-motion": "11", "zustand": "5"}}"#.to_string(),
    ));
    let m = detect(&with_manifest, root);
    assert!(m.packages.is_empty(), "{m:?}");
    assert_eq!(m.type_packages, ["only-types"]);
}

#[test]
fn missing_serializes_in_camel_case() {
    let m = Missing {
        imports: vec!["a".into()],
        packages: vec!["a".into()],
        type_packages: vec!["b".into()],
    };
    let v = serde_json::to_value(&m).unwrap();
    assert_eq!(v["typePackages"][0], "b");
}
