//! Tidy: rules of `STYLE.md` that a machine can check, over every source file of the
//! repository (`target/` and hidden directories skipped).
//!
//! * `unsafe` appears in code only in its named rooms ([`UNSAFE_ROOMS`]); everywhere else the
//!   crates deny or forbid `unsafe_code`, and this catches an `#[allow(unsafe_code)]` that
//!   slipped in.
//! * glommio is named in code only inside `shard/`, and there only in the files listed in
//!   [`GLOMMIO_FILES`]: a ratchet. A file that stops naming glommio must leave the list (so
//!   the list only shrinks), and a new file that names it fails until it is added on purpose.
//!   Only `shard/Cargo.toml` depends on it.
//! * No `dbg!`, `todo!()` or `FIXME` in sources, scripts and docs.
//! * No Rust file over [`LINES_MAX`] lines, except those in [`LONG_FILES`] (a ratchet too;
//!   empty today).
//!
//! A rule is checked on code with `//` comments removed where comments are allowed to speak
//! of the thing (`unsafe`, glommio); the markers are banned in comments too.

use std::fs;
use std::path::{Path, PathBuf};

/// Files where `unsafe` code may appear, with the reason (see `STYLE.md`, section 7).
const UNSAFE_ROOMS: &[(&str, &str)] = &[
    (
        "core/src/mmap.rs",
        "memory maps of the append-only spool: the one place that turns a mapping into a slice",
    ),
    (
        "shard/src/handoff.rs",
        "raw descriptors given to glommio: the hand-off between executors, listeners, and the \
         duplicates of store files a flush round syncs through the ring",
    ),
];

/// The `shard/` files that name glommio in code today. Ratchet: remove a file when it stops
/// naming glommio; adding one is a design decision (`STYLE.md`: glommio types stay inside the
/// runtime module).
const GLOMMIO_FILES: &[&str] = &[
    "shard/src/auth.rs",
    "shard/src/commit.rs",
    "shard/src/conn.rs",
    "shard/src/driver.rs",
    "shard/src/handoff.rs",
    "shard/src/imap.rs",
    "shard/src/listen.rs",
    "shard/src/lmtp.rs",
    "shard/src/mesh.rs",
    "shard/src/server.rs",
    "shard/src/shard.rs",
    "shard/src/socketmap.rs",
    "shard/src/testutil.rs",
];

/// Longest Rust file, in lines (`STYLE.md`: small rooms).
const LINES_MAX: usize = 800;

/// Rust files allowed over [`LINES_MAX`] today. Ratchet: remove a file when it is split.
const LONG_FILES: &[&str] = &[];

/// File kinds checked for the banned markers.
const TEXT_EXTENSIONS: &[&str] = &["rs", "toml", "py", "sh", "md"];

/// This file names every banned marker to ban it.
const SELF: &str = "tests/tidy.rs";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under the repository root, relative to it, sorted; `target/` and hidden
/// directories skipped.
fn files() -> Vec<String> {
    let root = root();
    let mut found = Vec::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).expect("readable directory") {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.starts_with('.') && name != ".ci" || name == "target" {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(&root).expect("under the root");
                found.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    found.sort();
    found
}

fn read(relative: &str) -> String {
    fs::read_to_string(root().join(relative)).unwrap_or_default()
}

fn rust_files() -> Vec<String> {
    files().into_iter().filter(|f| f.ends_with(".rs") && f != SELF).collect()
}

/// The lines of `text` with `//` comments (and doc comments) removed.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(number, line)| {
        let code = line.find("//").map_or(line, |at| &line[..at]);
        (number + 1, code)
    })
}

/// True when `word` occurs in `line` as a whole identifier.
fn has_word(line: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    line.match_indices(word).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

#[test]
fn unsafe_only_in_its_rooms() {
    let mut stray = Vec::new();
    for file in rust_files() {
        if UNSAFE_ROOMS.iter().any(|(room, _)| *room == file) {
            continue;
        }
        let text = read(&file);
        for (number, code) in code_lines(&text) {
            if has_word(code, "unsafe") || code.contains("allow(unsafe_code)") {
                stray.push(format!("{file}:{number}: {}", code.trim()));
            }
        }
    }
    assert!(
        stray.is_empty(),
        "unsafe outside its rooms (STYLE.md section 7):\n{}",
        stray.join("\n")
    );
    for (room, reason) in UNSAFE_ROOMS {
        assert!(root().join(room).is_file(), "the unsafe room {room} ({reason}) is gone");
    }
}

#[test]
fn glommio_only_in_the_runtime() {
    let mut naming = Vec::new();
    for file in rust_files() {
        let text = read(&file);
        if code_lines(&text).any(|(_, code)| has_word(code, "glommio")) {
            naming.push(file);
        }
    }
    let outside: Vec<&String> = naming.iter().filter(|f| !f.starts_with("shard/")).collect();
    assert!(outside.is_empty(), "glommio named outside shard/: {outside:?}");
    let unlisted: Vec<&String> =
        naming.iter().filter(|f| !GLOMMIO_FILES.contains(&f.as_str())).collect();
    assert!(
        unlisted.is_empty(),
        "new shard files naming glommio (keep it in the runtime): {unlisted:?}"
    );
    let stale: Vec<&&str> =
        GLOMMIO_FILES.iter().filter(|f| !naming.iter().any(|n| n == *f)).collect();
    assert!(
        stale.is_empty(),
        "these no longer name glommio: remove them from GLOMMIO_FILES: {stale:?}"
    );
    for manifest in files().into_iter().filter(|f| f.ends_with("Cargo.toml")) {
        let depends = read(&manifest).lines().any(|line| line.trim_start().starts_with("glommio"));
        assert!(!depends || manifest == "shard/Cargo.toml", "{manifest} depends on glommio");
    }
}

#[test]
fn no_debugging_leftovers() {
    let markers = [concat!("dbg", "!("), concat!("todo", "!("), concat!("FIX", "ME")];
    let mut found = Vec::new();
    for file in files() {
        let extension = Path::new(&file).extension().and_then(|e| e.to_str()).unwrap_or_default();
        let checked = TEXT_EXTENSIONS.contains(&extension) || file == ".ci/run";
        if !checked || file == SELF {
            continue;
        }
        for (number, line) in read(&file).lines().enumerate() {
            if markers.iter().any(|marker| line.contains(marker)) {
                found.push(format!("{file}:{}: {}", number + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "debugging leftovers:\n{}", found.join("\n"));
}

#[test]
fn rust_files_are_small() {
    let mut long = Vec::new();
    for file in rust_files() {
        let lines = read(&file).lines().count();
        if lines > LINES_MAX && !LONG_FILES.contains(&file.as_str()) {
            long.push(format!("{file}: {lines} lines"));
        }
    }
    assert!(long.is_empty(), "files over {LINES_MAX} lines (split them):\n{}", long.join("\n"));
    for file in LONG_FILES {
        let lines = read(file).lines().count();
        assert!(lines > LINES_MAX, "{file} is {lines} lines now: remove it from LONG_FILES");
    }
}
