//! The stable-toolchain driver of the fuzz targets: each target (`targets/*.rs`, one
//! `pub fn target(data: &[u8])`) runs under proptest with three kinds of input, mixed: any
//! bytes, a valid seed input mutated (bytes inserted, deleted, flipped, pieces of the target's
//! grammar spliced in, spans duplicated), and a concatenation of grammar pieces.
//!
//! Included with `#[path]` by the test files that call the targets
//! (`protocols/tests/fuzz_targets.rs`, `core/tests/fuzz_store.rs`); the libFuzzer binaries in
//! `fuzz_targets/` call the same targets.
//!
//! * Smoke (every `cargo test`): [`SMOKE_CASES`] cases per target from a fixed seed, so a
//!   failure in CI replays exactly.
//! * Long: `SKUA_FUZZ_CASES=<n>` runs `n` cases, or `SKUA_FUZZ_SECONDS=<s>` runs batches of
//!   [`BATCH_CASES`] until `s` seconds have passed; `SKUA_FUZZ_SEED=<n>` picks the first
//!   batch's seed (each batch after it uses the next one). Every run prints its count of
//!   executions and seeds (`--nocapture` to see them).
//!
//! A failing input is shrunk by proptest and printed in hex.

use std::cell::Cell;
use std::sync::Once;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Cases per target in a plain `cargo test`.
pub const SMOKE_CASES: u32 = 3_000;

/// Cases per batch in a timed run.
pub const BATCH_CASES: u32 = 20_000;

/// The longest input made by the "any bytes" and "pieces" strategies.
const INPUT_BYTES_MAX: usize = 1_024;

/// What a target is fed, beside any bytes: valid inputs to mutate, and pieces of its grammar.
pub struct Corpus {
    /// Valid (or nearly valid) inputs; a mutated one is a likely path deep into the target.
    pub seeds: &'static [&'static [u8]],
    /// Tokens of the grammar, spliced into seeds or strung together.
    pub pieces: &'static [&'static [u8]],
}

/// One edit of a seed.
#[derive(Clone, Debug)]
enum Edit {
    Insert(Index, Index),
    Delete(Index, u8),
    Flip(Index, u8),
    Set(Index, u8),
    Duplicate(Index, Index, u8),
    Truncate(Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<Index>(), any::<Index>()).prop_map(|(at, piece)| Edit::Insert(at, piece)),
        2 => (any::<Index>(), 1..32u8).prop_map(|(at, n)| Edit::Delete(at, n)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(at, mask)| Edit::Flip(at, mask)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Edit::Set(at, byte)),
        1 => (any::<Index>(), any::<Index>(), 1..64u8)
            .prop_map(|(from, to, n)| Edit::Duplicate(from, to, n)),
        1 => any::<Index>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut out: Vec<u8>, edits: &[Edit], pieces: &[&[u8]]) -> Vec<u8> {
    for edit in edits {
        let len = out.len();
        match edit {
            Edit::Insert(at, piece) if !pieces.is_empty() => {
                let at = at.index(len + 1);
                let piece = pieces[piece.index(pieces.len())];
                out.splice(at..at, piece.iter().copied());
            }
            Edit::Insert(..) => {}
            Edit::Delete(at, n) => {
                let at = at.index(len + 1);
                out.drain(at..(at + usize::from(*n)).min(len));
            }
            Edit::Flip(at, mask) if len > 0 => out[at.index(len)] ^= mask,
            Edit::Set(at, byte) if len > 0 => out[at.index(len)] = *byte,
            Edit::Flip(..) | Edit::Set(..) => {}
            Edit::Duplicate(from, to, n) => {
                let from = from.index(len + 1);
                let span = out[from..(from + usize::from(*n)).min(len)].to_vec();
                let to = to.index(len + 1);
                out.splice(to..to, span);
            }
            Edit::Truncate(at) => out.truncate(at.index(len + 1)),
        }
    }
    out
}

/// Inputs for `corpus`: any bytes, mutated seeds, strung pieces.
fn inputs(corpus: &'static Corpus) -> BoxedStrategy<Vec<u8>> {
    let any_bytes = prop::collection::vec(any::<u8>(), 0..INPUT_BYTES_MAX).boxed();
    let mut choices = vec![(1, any_bytes)];
    if !corpus.seeds.is_empty() {
        let mutated = (any::<Index>(), prop::collection::vec(edit(), 0..8))
            .prop_map(|(seed, edits)| {
                let seed = corpus.seeds[seed.index(corpus.seeds.len())];
                apply(seed.to_vec(), &edits, corpus.pieces)
            })
            .boxed();
        choices.push((4, mutated));
    }
    if !corpus.pieces.is_empty() {
        let strung = prop::collection::vec(any::<Index>(), 0..48)
            .prop_map(|picks| {
                let mut out = Vec::new();
                for pick in picks {
                    out.extend_from_slice(corpus.pieces[pick.index(corpus.pieces.len())]);
                }
                out.truncate(INPUT_BYTES_MAX);
                out
            })
            .boxed();
        choices.push((2, strung));
    }
    prop::strategy::Union::new_weighted(choices).boxed()
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.trim().parse().unwrap_or_else(|_| panic!("{name} must be a number, not {value:?}")))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

thread_local! {
    /// True while this thread runs target cases: their panics are expected while proptest
    /// shrinks a failing input, and only the final report is printed.
    static QUIET: Cell<bool> = const { Cell::new(false) };
    /// Where the last quiet panic happened, for the final report.
    static LAST_PANIC: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Installs, once, a panic hook that stays silent on threads running target cases and defers
/// to the previous hook everywhere else (other tests running in parallel).
fn quiet_panics_while_fuzzing() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                let place = info.location().map_or_else(String::new, ToString::to_string);
                LAST_PANIC.with(|last| *last.borrow_mut() = place);
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `cases` cases of `target` from `seed`; panics with the shrunk input on a failure.
fn batch(name: &str, target: fn(&[u8]), corpus: &'static Corpus, cases: u32, seed: u64) {
    let config =
        Config { cases, failure_persistence: None, max_shrink_iters: 4_096, ..Config::default() };
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &key);
    let mut runner = TestRunner::new_with_rng(config, rng);
    quiet_panics_while_fuzzing();
    QUIET.with(|quiet| quiet.set(true));
    let result = runner.run(&inputs(corpus), |data| {
        target(&data);
        Ok(())
    });
    QUIET.with(|quiet| quiet.set(false));
    match result {
        Ok(()) => {}
        Err(proptest::test_runner::TestError::Fail(reason, input)) => panic!(
            "fuzz {name}: SKUA_FUZZ_SEED={seed}: {reason}\npanicked at: {}\ninput ({} bytes, hex): {}\ninput (text): {:?}",
            LAST_PANIC.with(|last| last.borrow().clone()),
            input.len(),
            hex(&input),
            String::from_utf8_lossy(&input)
        ),
        Err(abort) => panic!("fuzz {name}: SKUA_FUZZ_SEED={seed}: {abort}"),
    }
}

/// Runs `target` in the mode the environment asks for (see the module docs) and returns the
/// number of executions.
pub fn run(name: &str, target: fn(&[u8]), corpus: &'static Corpus) -> u64 {
    let first_seed = env_number("SKUA_FUZZ_SEED").unwrap_or(0x5eed);
    let start = Instant::now();
    let mut executions = 0u64;
    let mut seed = first_seed;
    if let Some(seconds) = env_number("SKUA_FUZZ_SECONDS") {
        let deadline = start + Duration::from_secs(seconds);
        while Instant::now() < deadline {
            batch(name, target, corpus, BATCH_CASES, seed);
            executions += u64::from(BATCH_CASES);
            seed += 1;
        }
    } else {
        let cases = env_number("SKUA_FUZZ_CASES").unwrap_or(u64::from(SMOKE_CASES));
        let mut left = cases;
        while left > 0 {
            let now = u32::try_from(left.min(u64::from(BATCH_CASES))).expect("small");
            batch(name, target, corpus, now, seed);
            executions += u64::from(now);
            left -= u64::from(now);
            seed += 1;
        }
    }
    println!(
        "fuzz {name}: {executions} executions in {:.1} s (seeds {first_seed}..{seed})",
        start.elapsed().as_secs_f64()
    );
    executions
}
