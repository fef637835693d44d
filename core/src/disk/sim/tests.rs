//! Tests of the simulated disk itself: live vs durable data, directory entries, flush epochs,
//! freezing, and what each crash mode keeps.

use std::collections::BTreeSet;
use std::path::Path;

use super::{CrashMode, Damage, Fate, SECTOR_BYTES, SimDisk, SimRng};
use crate::disk::{Disk, DiskFile, Flush, OpenMode};
use crate::types::Epoch;

fn flush(disk: &SimDisk) {
    let job = disk.flush_begin().expect("something to flush");
    let epoch = job.epoch();
    job.run().expect("flush runs");
    disk.flush_end(epoch);
}

fn read_all(disk: &SimDisk, path: &str) -> Option<Vec<u8>> {
    let file = disk.open(Path::new(path), OpenMode::Existing).ok()?;
    let mut buf = vec![0; usize::try_from(file.len().unwrap()).unwrap()];
    file.read_exact_at(&mut buf, 0).unwrap();
    Some(buf)
}

fn write(disk: &SimDisk, path: &str, offset: u64, data: &[u8]) {
    let file = disk.open(Path::new(path), OpenMode::CreateIfMissing).unwrap();
    file.write_all_at(data, offset).unwrap();
}

#[test]
fn writes_are_live_at_once_and_durable_after_a_flush() {
    let disk = SimDisk::new();
    write(&disk, "a", 0, b"hello");
    assert_eq!(read_all(&disk, "a").unwrap(), b"hello");
    assert_eq!(disk.durable_contents(Path::new("a")), None, "the name is not durable yet");
    assert_eq!(read_all(&disk.crash(1, CrashMode::DropPending), "a"), None);
    assert_eq!(read_all(&disk.crash(1, CrashMode::KeepPending), "a").unwrap(), b"hello");

    flush(&disk);
    write(&disk, "a", 5, b" world");
    assert_eq!(read_all(&disk, "a").unwrap(), b"hello world");
    assert_eq!(disk.durable_contents(Path::new("a")).unwrap(), b"hello");
    assert_eq!(read_all(&disk.crash(1, CrashMode::DropPending), "a").unwrap(), b"hello");
    assert_eq!(disk.pending_ops(), 1);
    assert_eq!(disk.flushes_done(), 1);
}

#[test]
fn epochs_advance_with_flush_rounds() {
    let disk = SimDisk::new();
    assert_eq!((disk.epoch_open(), disk.epoch_durable()), (Epoch(1), Epoch(0)));
    assert!(disk.flush_begin().is_none(), "nothing written");
    write(&disk, "a", 0, b"x");
    let job = disk.flush_begin().unwrap();
    assert_eq!(job.epoch(), Epoch(1));
    assert_eq!(disk.epoch_open(), Epoch(2));
    // A write during the flush belongs to the next epoch and stays pending after it.
    write(&disk, "a", 1, b"y");
    job.run().unwrap();
    disk.flush_end(Epoch(1));
    assert_eq!(disk.epoch_durable(), Epoch(1));
    assert_eq!(disk.durable_contents(Path::new("a")).unwrap(), b"x");
    assert_eq!(disk.pending_ops(), 1);
    flush(&disk);
    assert_eq!(disk.durable_contents(Path::new("a")).unwrap(), b"xy");
}

#[test]
fn a_later_flush_covers_earlier_epochs() {
    let disk = SimDisk::new();
    write(&disk, "a", 0, b"1");
    let first = disk.flush_begin().unwrap();
    write(&disk, "a", 1, b"2");
    let second = disk.flush_begin().unwrap();
    second.run().unwrap();
    assert_eq!(disk.durable_contents(Path::new("a")).unwrap(), b"12");
    first.run().unwrap();
    disk.flush_end(Epoch(2));
    assert_eq!(disk.epoch_durable(), Epoch(2));
}

#[test]
#[should_panic(expected = "did not run")]
fn flush_end_before_run_is_a_caller_bug() {
    let disk = SimDisk::new();
    write(&disk, "a", 0, b"1");
    let job = disk.flush_begin().unwrap();
    disk.flush_end(job.epoch());
}

#[test]
fn directory_entries_need_a_flush() {
    let disk = SimDisk::new();
    disk.create_dir_all(Path::new("u/mail")).unwrap();
    write(&disk, "u/mail/x", 0, b"data");
    flush(&disk);

    disk.rename(Path::new("u/mail/x"), Path::new("u/mail/y")).unwrap();
    write(&disk, "u/mail/new", 0, b"fresh");
    assert_eq!(disk.list_dir(Path::new("u/mail")).unwrap(), ["new", "y"]);
    let lost = disk.crash(7, CrashMode::DropPending);
    assert_eq!(lost.list_dir(Path::new("u/mail")).unwrap(), ["x"]);
    assert_eq!(read_all(&lost, "u/mail/x").unwrap(), b"data");
    let kept = disk.crash(7, CrashMode::KeepPending);
    assert_eq!(kept.list_dir(Path::new("u/mail")).unwrap(), ["new", "y"]);

    flush(&disk);
    disk.remove_file(Path::new("u/mail/y")).unwrap();
    assert!(!disk.exists(Path::new("u/mail/y")));
    assert!(disk.crash(7, CrashMode::DropPending).exists(Path::new("u/mail/y")));
    assert!(!disk.crash(7, CrashMode::KeepPending).exists(Path::new("u/mail/y")));
}

#[test]
fn a_lost_directory_loses_the_files_created_in_it() {
    let disk = SimDisk::new();
    disk.create_dir_all(Path::new("d/e")).unwrap();
    write(&disk, "d/e/f", 0, b"1");
    for seed in 0..200 {
        let crashed = disk.crash(seed, CrashMode::Subset);
        if crashed.exists(Path::new("d/e/f")) {
            assert!(crashed.exists(Path::new("d/e")));
            assert!(crashed.exists(Path::new("d")));
        }
    }
}

#[test]
fn rename_replaces_atomically_and_keeps_open_handles() {
    let disk = SimDisk::new();
    write(&disk, "old", 0, b"old");
    write(&disk, "tmp", 0, b"new");
    let handle = disk.open(Path::new("tmp"), OpenMode::Existing).unwrap();
    disk.rename(Path::new("tmp"), Path::new("old")).unwrap();
    assert_eq!(read_all(&disk, "old").unwrap(), b"new");
    assert!(!disk.exists(Path::new("tmp")));
    handle.write_all_at(b"NEW", 0).unwrap();
    assert_eq!(read_all(&disk, "old").unwrap(), b"NEW");
    assert_eq!(
        disk.rename(Path::new("tmp"), Path::new("x")).unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
}

#[test]
fn directories_rename_with_their_contents() {
    let disk = SimDisk::new();
    disk.create_dir_all(Path::new("a/b")).unwrap();
    write(&disk, "a/b/f", 0, b"1");
    disk.rename(Path::new("a"), Path::new("z")).unwrap();
    assert_eq!(read_all(&disk, "z/b/f").unwrap(), b"1");
    assert!(!disk.exists(Path::new("a")));
    assert!(disk.rename(Path::new("z"), Path::new("z/b/inner")).is_err());
}

#[test]
fn paths_must_stay_under_the_root() {
    let disk = SimDisk::new();
    for bad in ["../x", "/etc/passwd", "a/../../b"] {
        let error = disk.open(Path::new(bad), OpenMode::CreateIfMissing).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{bad}");
    }
    assert!(disk.open(Path::new("missing/x"), OpenMode::CreateIfMissing).is_err());
    assert!(disk.open(Path::new("x"), OpenMode::Existing).is_err());
}

#[test]
fn reads_past_the_end_fail() {
    let disk = SimDisk::new();
    write(&disk, "a", 0, b"abc");
    let file = disk.open(Path::new("a"), OpenMode::Existing).unwrap();
    let mut buf = [0; 4];
    assert_eq!(
        file.read_exact_at(&mut buf, 0).unwrap_err().kind(),
        std::io::ErrorKind::UnexpectedEof
    );
    assert!(file.view(2, 2).is_err());
    assert_eq!(&*file.view(1, 2).unwrap(), b"bc");
    file.set_len(1).unwrap();
    assert_eq!(file.len().unwrap(), 1);
    file.write_all_at(b"z", 3).unwrap();
    assert_eq!(read_all(&disk, "a").unwrap(), b"a\0\0z");
}

/// Writes `sectors` sectors, each filled with its own number, after a flushed base of 0xee.
fn torn_fixture(sectors: u8) -> (SimDisk, Vec<u8>) {
    let disk = SimDisk::new();
    let total = usize::from(sectors) * SECTOR_BYTES;
    write(&disk, "f", 0, &vec![0xee; total]);
    flush(&disk);
    let data: Vec<u8> = (0..total).map(|i| u8::try_from(i / SECTOR_BYTES + 1).unwrap()).collect();
    write(&disk, "f", 0, &data);
    (disk, data)
}

#[test]
fn torn_writes_keep_a_sector_prefix() {
    let (disk, new) = torn_fixture(4);
    let mut prefixes = BTreeSet::new();
    for seed in 0..300 {
        let contents = read_all(&disk.crash(seed, CrashMode::TornSubset), "f").unwrap();
        assert_eq!(contents.len(), new.len());
        let sectors: Vec<&[u8]> = contents.chunks(SECTOR_BYTES).collect();
        let kept = sectors.iter().take_while(|s| s[0] != 0xee).count();
        for (index, sector) in sectors.iter().enumerate() {
            let expected = if index < kept { u8::try_from(index + 1).unwrap() } else { 0xee };
            assert!(sector.iter().all(|&b| b == expected), "seed {seed} sector {index}");
        }
        prefixes.insert(kept);
    }
    assert_eq!(prefixes, BTreeSet::from([0, 1, 2, 3, 4]), "every tear point is reachable");
}

#[test]
fn prefix_mode_keeps_ops_in_order() {
    let disk = SimDisk::new();
    write(&disk, "f", 0, b"");
    flush(&disk);
    for i in 0..10u8 {
        write(&disk, "f", u64::from(i), &[i]);
    }
    let mut lengths = BTreeSet::new();
    for seed in 0..200 {
        let contents = read_all(&disk.crash(seed, CrashMode::Prefix), "f").unwrap();
        assert_eq!(contents, (0..u8::try_from(contents.len()).unwrap()).collect::<Vec<_>>());
        lengths.insert(contents.len());
    }
    assert_eq!(lengths.len(), 11, "every prefix length is reachable");
}

#[test]
fn subset_mode_reorders_whole_writes() {
    let disk = SimDisk::new();
    write(&disk, "f", 0, &[0; 4]);
    flush(&disk);
    for i in 0..4u8 {
        write(&disk, "f", u64::from(i), &[i + 1]);
    }
    let mut outcomes = BTreeSet::new();
    for seed in 0..500 {
        outcomes.insert(read_all(&disk.crash(seed, CrashMode::Subset), "f").unwrap());
    }
    assert_eq!(outcomes.len(), 16, "every subset of four writes is reachable");
}

#[test]
fn crashes_replay_from_the_seed() {
    let (disk, _) = torn_fixture(8);
    for seed in 0..50 {
        let first = disk.crash_with_report(seed, CrashMode::TornSubset);
        let second = disk.crash_with_report(seed, CrashMode::TornSubset);
        assert_eq!(first.1, second.1);
        assert_eq!(read_all(&first.0, "f"), read_all(&second.0, "f"));
    }
    assert_eq!(SimRng::new(9).next_u64(), SimRng::new(9).next_u64());
    assert_ne!(SimRng::new(9).next_u64(), SimRng::new(10).next_u64());
}

#[test]
fn freeze_stops_the_durable_image_at_the_nth_flush() {
    let disk = SimDisk::new();
    disk.freeze_after_flushes(1);
    write(&disk, "a", 0, b"1");
    flush(&disk);
    write(&disk, "a", 1, b"2");
    let job = disk.flush_begin().unwrap();
    assert!(job.run().is_err());
    assert!(disk.is_frozen());
    assert_eq!(disk.flushes_done(), 1);
    assert_eq!(read_all(&disk, "a").unwrap(), b"12", "the live image still moves");
    assert_eq!(read_all(&disk.crash(0, CrashMode::DropPending), "a").unwrap(), b"1");
    assert_eq!(read_all(&disk.crash(0, CrashMode::KeepPending), "a").unwrap(), b"12");
}

#[test]
fn a_crashed_disk_is_a_fresh_working_disk() {
    let disk = SimDisk::new();
    write(&disk, "a", 0, b"1");
    flush(&disk);
    let crashed = disk.crash(3, CrashMode::DropPending);
    assert_eq!((crashed.epoch_open(), crashed.epoch_durable()), (Epoch(1), Epoch(0)));
    assert_eq!(crashed.pending_ops(), 0);
    write(&crashed, "b", 0, b"2");
    flush(&crashed);
    assert_eq!(read_all(&crashed, "a").unwrap(), b"1");
    assert_eq!(crashed.durable_contents(Path::new("b")).unwrap(), b"2");
    assert_eq!(read_all(&disk, "b"), None, "the crashed disk shares nothing with the old one");
}

#[test]
fn flush_jobs_are_send() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<super::SimFlush>();
}

#[test]
fn crash_where_picks_each_fate() {
    let disk = SimDisk::new();
    write(&disk, "a", 0, b"old");
    write(&disk, "b", 0, &[7; 1024]);
    flush(&disk);
    write(&disk, "a", 0, b"new");
    write(&disk, "b", 0, &[9; 1024]);
    write(&disk, "c", 0, b"c");
    let mut seen = Vec::new();
    let (crashed, report) = disk.crash_where(|op| {
        seen.push((op.kind, op.path.display().to_string(), op.offset, op.len));
        match op.path.to_str() {
            Some("a") => Fate::Lost,
            Some("b") => Fate::Torn(512),
            _ => Fate::Kept,
        }
    });
    assert_eq!(
        seen,
        [
            ("write", "a".to_owned(), 0, 3),
            ("write", "b".to_owned(), 0, 1024),
            ("create", "c".to_owned(), 0, 0),
            ("write", "c".to_owned(), 0, 1),
        ]
    );
    assert_eq!(read_all(&crashed, "a").unwrap(), b"old");
    let b = read_all(&crashed, "b").unwrap();
    assert!(b[..512].iter().all(|&x| x == 9) && b[512..].iter().all(|&x| x == 7));
    assert_eq!(read_all(&crashed, "c").unwrap(), b"c");
    assert_eq!((report.pending, report.kept, report.torn), (4, 2, 1));
    assert!(report.ops[1].ends_with("torn after 512 bytes"), "{:?}", report.ops);
}

#[test]
fn corruption_changes_live_and_durable_bytes_alike() {
    let disk = SimDisk::new();
    write(&disk, "a", 0, &[0x55; 2048]);
    write(&disk, "empty", 0, b"");
    flush(&disk);
    let mut kinds = BTreeSet::new();
    for seed in 0..60 {
        let crashed = disk.crash(seed, CrashMode::DropPending);
        let damage = crashed.corrupt(seed, 1);
        assert_eq!(damage.len(), 1);
        assert!(damage[0].starts_with("a: "), "empty files are left alone: {damage:?}");
        let live = read_all(&crashed, "a").unwrap();
        assert_eq!(crashed.durable_contents(Path::new("a")).unwrap(), live);
        let changed = live.iter().filter(|&&b| b != 0x55).count();
        let kind = damage[0].split([' ', '{']).nth(1).unwrap().to_owned();
        match kind.as_str() {
            "Flip" => assert_eq!(changed, 1, "{damage:?}"),
            "Zero" => assert_eq!(changed, SECTOR_BYTES, "{damage:?}"),
            // The file is uniform: a misdirected sector changes nothing here.
            _ => assert_eq!((kind.as_str(), changed), ("Misdirect", 0), "{damage:?}"),
        }
        kinds.insert(kind);
    }
    assert_eq!(kinds.len(), 3, "every kind of damage is drawn: {kinds:?}");
    assert_eq!(read_all(&disk, "a").unwrap(), vec![0x55; 2048], "the source disk is untouched");
}

#[test]
fn damage_hits_exactly_where_it_is_told() {
    let disk = SimDisk::new();
    let sectors: Vec<u8> =
        (0..4 * SECTOR_BYTES).map(|i| u8::try_from(i / SECTOR_BYTES).unwrap()).collect();
    write(&disk, "f", 0, &sectors);
    flush(&disk);
    let f = Path::new("f");
    disk.damage(f, Damage::Misdirect { source: 3 * SECTOR_BYTES, target: 0 }).unwrap();
    disk.damage(f, Damage::Zero { offset: SECTOR_BYTES + 7 }).unwrap();
    disk.damage(f, Damage::Flip { offset: 2 * SECTOR_BYTES, mask: 0x80 }).unwrap();
    let after = read_all(&disk, "f").unwrap();
    assert!(after[..SECTOR_BYTES].iter().all(|&b| b == 3));
    assert!(after[SECTOR_BYTES..2 * SECTOR_BYTES].iter().all(|&b| b == 0));
    assert_eq!(after[2 * SECTOR_BYTES], 0x82);
    assert!(after[2 * SECTOR_BYTES + 1..3 * SECTOR_BYTES].iter().all(|&b| b == 2));
    assert_eq!(disk.durable_contents(f).unwrap(), after);
    let unaligned = Damage::Misdirect { source: 1, target: 0 };
    assert_eq!(disk.damage(f, unaligned).unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    let missing = disk.damage(Path::new("nope"), Damage::Zero { offset: 0 });
    assert_eq!(missing.unwrap_err().kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn unsynced_writes_wait_for_a_round_that_syncs_their_file() {
    let disk = SimDisk::new();
    write(&disk, "a", 0, b"aa");
    write(&disk, "b", 0, b"bb");
    flush(&disk);
    let a = disk.open(Path::new("a"), OpenMode::Existing).unwrap();
    a.write_all_at_unsynced(b"xx", 2).unwrap();
    assert_eq!(read_all(&disk, "a").unwrap(), b"aaxx", "live at once");
    assert!(disk.flush_begin().is_none(), "an unsynced write dirties nothing");
    // A round that syncs only another file leaves it pending: a crash may still lose it.
    write(&disk, "b", 2, b"yy");
    flush(&disk);
    assert_eq!(disk.durable_contents(Path::new("a")).unwrap(), b"aa");
    assert_eq!(disk.durable_contents(Path::new("b")).unwrap(), b"bbyy");
    assert_eq!(disk.pending_ops(), 1);
    let lost = disk.crash(1, CrashMode::DropPending);
    assert_eq!(read_all(&lost, "a").unwrap(), b"aa");
    // A normal write to the same file makes the round sync the earlier unsynced one too.
    a.write_all_at(b"z", 4).unwrap();
    flush(&disk);
    assert_eq!(disk.durable_contents(Path::new("a")).unwrap(), b"aaxxz");
    assert_eq!(disk.pending_ops(), 0);
}
