//! Release builds of the server place the functions its start and an editor's first requests
//! run (listed in `build/text-order.txt`, made by `scripts/text-order.py`) together at the
//! front of the code. The kernel maps code 64 KB around each page the process touches, so ~1.3
//! MB of startup code scattered over 9 MB kept ~5.5 MB of the binary resident in an idle
//! server. A stale list only costs memory: names it has that the binary lacks are skipped.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build/text-order.txt");
    println!("cargo:rerun-if-changed=build.rs");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let order = Path::new(&var("CARGO_MANIFEST_DIR")).join("build/text-order.txt");
    if var("PROFILE") != "release"
        || var("TARGET") != "x86_64-unknown-linux-gnu"
        || !order.is_file()
    {
        return;
    }
    // An ordering file is an LLD option, and LLD links this target by default from Rust 1.90
    // on; a linker chosen by the user (GNU ld rejects the option) turns it off.
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    if flags.contains("linker")
        || flags.contains("fuse-ld")
        || std::env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some()
        || !lld_by_default(&var("RUSTC"))
    {
        return;
    }
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        order.display()
    );
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}

/// Whether `rustc` links x86_64 Linux with its bundled LLD: 1.90 or later, with the
/// self-contained `gcc-ld/ld.lld` in its sysroot (distribution builds may leave it out and
/// link with the system's `ld`).
fn lld_by_default(rustc: &str) -> bool {
    let rustc = if rustc.is_empty() { "rustc" } else { rustc };
    let run = |args: &[&str]| {
        Command::new(rustc)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let Some(sysroot) = run(&["--print", "sysroot"]) else {
        return false;
    };
    let lld =
        Path::new(sysroot.trim()).join("lib/rustlib/x86_64-unknown-linux-gnu/bin/gcc-ld/ld.lld");
    if !lld.is_file() {
        return false;
    }
    let Some(text) = run(&["-vV"]) else {
        return false;
    };
    let Some(version) = text.lines().find_map(|l| l.strip_prefix("release: ")) else {
        return false;
    };
    let mut parts = version
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (1, 90)
}
