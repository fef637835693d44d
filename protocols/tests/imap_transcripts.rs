//! Runs every `C:`/`S:` transcript in `tests/transcripts/` against real sessions on a real
//! store (see `imap_support` for the format).

mod imap_support;

#[test]
fn transcripts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("transcripts dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    entries.sort();
    assert!(!entries.is_empty(), "no transcripts in {}", dir.display());
    let mut failed = Vec::new();
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("read transcript");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // Every transcript runs, so one failure does not hide the others.
        if std::panic::catch_unwind(|| imap_support::run_transcript(&name, &text)).is_err() {
            failed.push(name);
        }
    }
    assert!(failed.is_empty(), "failed transcripts: {failed:?}");
}
