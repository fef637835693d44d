//! The `socketmap` fuzz target (`protocols/fuzz/targets/socketmap.rs`) on the stable
//! toolchain, like `fuzz_targets.rs` runs the others: a smoke of a few thousand cases from a
//! fixed seed in a plain `cargo test`; `SKUA_FUZZ_CASES` / `SKUA_FUZZ_SECONDS` /
//! `SKUA_FUZZ_SEED` for long runs (`protocols/fuzz/README.md`).

#[path = "../fuzz/runner.rs"]
mod runner;

#[path = "../fuzz/targets/socketmap.rs"]
mod socketmap;

use runner::Corpus;

const REQUESTS: Corpus = Corpus {
    seeds: &[
        b"\x0522:user alice@example.org,",
        b"\x0123:quota bob+x@example.org,9:user carol,",
        b"\x3f4:user,5:user ,13:nosuch a@b.c,",
        b"\x020:,",
        b"\x0711:user \xff\xfe@x.y,",
        b"\x014096:",
        b"\x0206:user a,",
        b"\x026:user aX",
    ],
    pieces: &[
        b":",
        b",",
        b" ",
        b"0",
        b"1",
        b"9",
        b"12",
        b"4096",
        b"4097",
        b"user",
        b"quota",
        b"user ",
        b"quota ",
        b"@",
        b"+",
        b"\xc3\xa9",
        b"\xff",
        b"\0",
        b"\r\n",
    ],
};

#[test]
fn socketmap() {
    assert!(runner::run("socketmap", socketmap::target, &REQUESTS) > 0);
}
