//! How long `UserStore::open` takes on a large store on the real disk (warm page cache), with
//! its indexes intact and with the INBOX index deleted (a rebuild from the whole spool).
//!
//! Ignored by default (it writes about 400 MB); run in release:
//! `cargo test -p skua-core --release --test store_open_perf -- --ignored --nocapture`.
//! Prints milliseconds; it asserts no timing (machines are noisy), only that every message
//! comes back.

mod store_support;

use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use skua_core::disk::os::OsDisk;
use skua_core::store::{OpenProgress, OpenStage, UserStore};
use skua_core::types::MailboxId;
use store_support::{USER, World, append_many, flush};

/// Messages in INBOX (the other two mailboxes get a tenth each).
const INBOX_MESSAGES: u32 = 200_000;

/// Builds the store: appends in batches, flushing between them as the shard would.
fn build(world: &mut World) -> Vec<(MailboxId, usize)> {
    let mut store = world.open();
    let other = ["Archive", "Sent"].map(|name| {
        store.create_mailbox(name).expect("create");
        store.mailbox_id(name).expect("created")
    });
    let inbox = store.mailbox_id("INBOX").expect("INBOX");
    let mut next = 1;
    for (mailbox, count) in [(inbox, INBOX_MESSAGES), (other[0], INBOX_MESSAGES / 10)]
        .into_iter()
        .chain([(other[1], INBOX_MESSAGES / 10)])
    {
        let mut left = count;
        while left > 0 {
            let batch = left.min(1000);
            append_many(&mut store, mailbox, next, batch);
            next += batch;
            left -= batch;
            world.flush();
            store.subscribe("INBOX").expect("housekeeping");
            world.flush();
        }
    }
    let counts = [inbox, other[0], other[1]]
        .map(|id| (id, store.messages(id).expect("listed").len()))
        .to_vec();
    drop(store);
    counts
}

/// Opens the store on a fresh disk object; the time it took, in ms, and the store's disk.
fn timed_open(world: &World) -> (f64, UserStore<OsDisk>) {
    let disk = Rc::new(OsDisk::new(world.dir.path()).expect("disk"));
    let started = Instant::now();
    let store = UserStore::open(disk, Path::new(USER)).expect("open");
    (started.elapsed().as_secs_f64() * 1000.0, store)
}

/// Opens the store in steps of `budget` units, timing each (wall clock: on a busy machine the
/// longest steps include time other processes held the CPU); prints the total, the median,
/// 99th percentile and longest steps, and the time per unit of each stage.
fn timed_stepped_open(world: &World, budget: u64, label: &str) -> UserStore<OsDisk> {
    let disk = Rc::new(OsDisk::new(world.dir.path()).expect("disk"));
    let mut opening = UserStore::opening(disk, Path::new(USER));
    let mut steps_ms: Vec<(f64, OpenStage)> = Vec::new();
    let mut by_stage: Vec<(OpenStage, f64, u64)> = Vec::new();
    let started = Instant::now();
    loop {
        let stage = opening.work().stage;
        let step_started = Instant::now();
        let progress = opening.step(budget).expect("open");
        let ms = step_started.elapsed().as_secs_f64() * 1000.0;
        steps_ms.push((ms, stage));
        let units = match &progress {
            OpenProgress::Pending(more) => more.work().last_step_units,
            OpenProgress::Open { work, .. } => work.last_step_units,
        };
        match by_stage.last_mut() {
            Some((last, total_ms, total_units)) if *last == stage => {
                *total_ms += ms;
                *total_units += units;
            }
            _ => by_stage.push((stage, ms, units)),
        }
        match progress {
            OpenProgress::Pending(more) => opening = more,
            OpenProgress::Open { store, work } => {
                let total = started.elapsed().as_secs_f64() * 1000.0;
                steps_ms.sort_by(|a, b| a.0.total_cmp(&b.0));
                let longest: Vec<String> = steps_ms
                    .iter()
                    .rev()
                    .take(3)
                    .map(|(ms, stage)| format!("{ms:.2} ms ({stage:?})"))
                    .collect();
                let p50 = steps_ms[steps_ms.len() / 2].0;
                let p99 = steps_ms[steps_ms.len() * 99 / 100].0;
                println!(
                    "{label}, budget {budget}: {total:.1} ms in {} steps ({} units), step p50 \
                     {p50:.3} ms, p99 {p99:.3} ms, longest {longest:?}",
                    work.steps, work.units
                );
                for (stage, ms, units) in by_stage {
                    let ns = ms * 1e6 / units.max(1) as f64;
                    println!("    {stage:?}: {ms:.1} ms, {units} units, {ns:.0} ns per unit");
                }
                return store;
            }
        }
    }
}

fn check_counts(store: &UserStore<OsDisk>, counts: &[(MailboxId, usize)]) {
    for &(id, count) in counts {
        assert_eq!(store.messages(id).expect("listed").len(), count, "mailbox {id:?}");
    }
}

#[test]
#[ignore = "writes ~400 MB; a measurement, run by hand in release"]
fn open_a_large_store() {
    let mut world = World::new();
    let counts = build(&mut world);
    let mut intact = Vec::new();
    for _ in 0..5 {
        let (ms, store) = timed_open(&world);
        check_counts(&store, &counts);
        flush(store.disk());
        intact.push(ms);
    }
    for budget in [skua_core::limits::OPEN_STEP_UNITS, 4 * skua_core::limits::OPEN_STEP_UNITS] {
        let store = timed_stepped_open(&world, budget, "stepped open, indexes intact");
        check_counts(&store, &counts);
        flush(store.disk());
    }
    let mut rebuilt = Vec::new();
    for _ in 0..3 {
        std::fs::remove_file(world.index_path(counts[0].0)).expect("remove the INBOX index");
        let (ms, store) = timed_open(&world);
        check_counts(&store, &counts);
        assert_eq!(store.recovery().indexes_rebuilt, 1);
        flush(store.disk());
        rebuilt.push(ms);
    }
    for budget in [skua_core::limits::OPEN_STEP_UNITS, 4 * skua_core::limits::OPEN_STEP_UNITS] {
        std::fs::remove_file(world.index_path(counts[0].0)).expect("remove the INBOX index");
        let store = timed_stepped_open(&world, budget, "stepped open, INBOX index deleted");
        check_counts(&store, &counts);
        flush(store.disk());
    }
    intact.sort_by(f64::total_cmp);
    rebuilt.sort_by(f64::total_cmp);
    let messages: usize = counts.iter().map(|c| c.1).sum();
    println!("store of {messages} messages in 3 mailboxes");
    println!("open, indexes intact: ms {intact:.1?} (median {:.1})", intact[intact.len() / 2]);
    println!("open, INBOX index deleted: ms {rebuilt:.1?} (median {:.1})", rebuilt[1]);
}

#[test]
#[ignore = "a measurement, run by hand in release"]
fn open_a_store_of_many_mailboxes() {
    let mut world = World::new();
    let mut store = world.open();
    for n in 0..2000u32 {
        let name = format!("folder/{n:04}");
        store.create_mailbox(&name).expect("create");
        let id = store.mailbox_id(&name).expect("created");
        append_many(&mut store, id, n * 5 + 1, 5);
        if n % 100 == 99 {
            world.flush();
            store.subscribe("INBOX").expect("housekeeping");
            world.flush();
        }
    }
    world.flush();
    drop(store);
    let (ms, store) = timed_open(&world);
    assert_eq!(store.mailboxes().len(), 2001);
    flush(store.disk());
    println!("2,001 mailboxes of 5 messages: open in one piece {ms:.1} ms");
    for budget in [skua_core::limits::OPEN_STEP_UNITS, 4 * skua_core::limits::OPEN_STEP_UNITS] {
        let store = timed_stepped_open(&world, budget, "stepped open, 2,001 mailboxes");
        assert_eq!(store.mailboxes().len(), 2001);
        flush(store.disk());
    }
}
