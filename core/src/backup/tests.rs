//! The archive format: what is written reads back the same (a stream, then an archive of
//! several snapshots that share bodies), and an archive cut short or with a flipped bit is
//! found out, the snapshots before the damage staying usable.

use std::io::Cursor;

use proptest::prelude::*;

use super::*;

/// A snapshot as a stream's records (bodies inline), from mailbox count, messages as
/// (mailbox, body) and subscriptions.
fn snapshot(time: i64, mailboxes: u32, messages: &[(u32, Vec<u8>)]) -> Vec<Record> {
    let mut records = vec![Record::Start(SnapshotStart {
        time_unix_millis: time,
        user: "alice".to_owned(),
        mailboxes,
        messages: messages.len() as u32,
    })];
    for m in 0..mailboxes {
        records.push(Record::Mailbox(MailboxState {
            name: if m == 0 { "INBOX".to_owned() } else { format!("Box{m}") },
            uid_validity: 100 + m,
            uid_next: 1 + messages.len() as u32,
            special_use: m,
            keywords: vec!["$Label1".to_owned(), "work".to_owned()],
            acl: if m == 1 { vec![("bob".to_owned(), 3)] } else { Vec::new() },
        }));
    }
    records.push(Record::Subscriptions(vec!["INBOX".to_owned(), "Gone".to_owned()]));
    let states: Vec<MessageState> = messages
        .iter()
        .enumerate()
        .map(|(i, (mailbox, body))| MessageState {
            mailbox: *mailbox,
            uid: i as u32 + 1,
            system: (i % 32) as u16,
            keywords: (i % 4) as u64,
            date_unix_seconds: 1_700_000_000 + i as i64,
            zone_minutes: -120,
            size: body.len() as u32,
        })
        .collect();
    for chunk in states.chunks(3) {
        records.push(Record::Messages(chunk.to_vec()));
    }
    for (_, body) in messages {
        records.push(Record::Body { digest: sha256(body), bytes: body.clone() });
    }
    records.push(Record::End(SnapshotEnd::default()));
    records
}

fn stream_bytes(records: &[Record]) -> Vec<u8> {
    let mut writer = Writer::new(Vec::new(), 0);
    writer.header(1).unwrap();
    for record in records {
        writer.record(record).unwrap();
    }
    writer.into_inner()
}

/// Decodes all of `bytes`, fed `piece` bytes at a time.
fn decode(bytes: &[u8], piece: usize) -> Result<Vec<Record>, ArchiveError> {
    let mut decoder = Decoder::stream();
    let mut records = Vec::new();
    for chunk in bytes.chunks(piece.max(1)) {
        decoder.feed(chunk);
        while let Some(record) = decoder.next_record()? {
            records.push(record);
        }
    }
    decoder.finish()?;
    Ok(records)
}

/// An archive of the given snapshots, each appended as a backup would.
fn archive(snapshots: &[Vec<Record>]) -> Vec<u8> {
    let mut file = Vec::new();
    for records in snapshots {
        let scan = (!file.is_empty()).then(|| Scan::read(Cursor::new(&file)).unwrap());
        let mut appender = Appender::new(Vec::new(), scan.as_ref(), 7).unwrap();
        for record in records {
            appender.push(record).unwrap();
        }
        file.extend(appender.into_inner());
    }
    file
}

/// The stream of snapshot `index` replayed from an archive.
fn replayed(file: &[u8], index: usize, mailbox: Option<&str>) -> Result<Vec<Record>, ArchiveError> {
    let scan = Scan::read(Cursor::new(file))?;
    let mut out = Vec::new();
    let mut source = Cursor::new(file);
    replay(&mut source, &scan, &scan.snapshots[index], mailbox, &mut |record| {
        out.push(record);
        Ok::<(), ArchiveError>(())
    })?;
    Ok(out)
}

/// What a snapshot's records say, whatever their cut into messages records: the messages in
/// one record, the end record left out (a writer makes it).
fn flat(records: &[Record]) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    for record in records {
        match (out.last_mut(), record) {
            (_, Record::End(_)) => {}
            (Some(Record::Messages(all)), Record::Messages(more)) => {
                all.extend(more.iter().copied())
            }
            _ => out.push(record.clone()),
        }
    }
    out
}

fn messages_strategy() -> impl Strategy<Value = (u32, Vec<(u32, Vec<u8>)>)> {
    (1u32..4).prop_flat_map(|mailboxes| {
        let message = (0..mailboxes, prop::collection::vec(any::<u8>(), 0..200));
        (Just(mailboxes), prop::collection::vec(message, 0..12))
    })
}

proptest! {
    #[test]
    fn a_stream_reads_back_as_written_in_pieces_of_any_size(
        (mailboxes, messages) in messages_strategy(),
        piece in 1usize..300,
    ) {
        let records = snapshot(5, mailboxes, &messages);
        let bytes = stream_bytes(&records);
        let read = decode(&bytes, piece).unwrap();
        prop_assert_eq!(read.len(), records.len());
        prop_assert_eq!(&read[..read.len() - 1], &records[..records.len() - 1]);
        let Record::End(end) = read.last().unwrap() else { panic!("ends with an end") };
        prop_assert_eq!(end.messages as usize, messages.len());
        prop_assert_eq!(end.bodies as usize, messages.len());
    }

    #[test]
    fn an_archive_keeps_each_body_once_and_replays_every_snapshot(
        (mailboxes, messages) in messages_strategy(),
        extra in prop::collection::vec(any::<u8>(), 1..100),
    ) {
        let first = snapshot(10, mailboxes, &messages);
        let mut more = messages.clone();
        more.push((0, extra.clone()));
        let second = snapshot(20, mailboxes, &more);
        let file = archive(&[first.clone(), second.clone()]);
        let scan = Scan::read(Cursor::new(&file)).unwrap();
        prop_assert!(scan.damage.is_none(), "{:?}", scan.damage);
        prop_assert_eq!(scan.snapshots.len(), 2);
        let distinct = |m: &[(u32, Vec<u8>)]| {
            m.iter().map(|(_, b)| sha256(b)).collect::<std::collections::HashSet<_>>().len()
        };
        prop_assert_eq!(scan.snapshots[0].bodies_added as usize, distinct(&messages));
        let added_second = usize::from(!messages.iter().any(|(_, b)| *b == extra));
        prop_assert_eq!(scan.snapshots[1].bodies_added as usize, added_second);
        prop_assert_eq!(flat(&replayed(&file, 0, None).unwrap()), flat(&first));
        prop_assert_eq!(flat(&replayed(&file, 1, None).unwrap()), flat(&second));
        prop_assert_eq!(scan.pick("ALICE", Some(15)).map(|s| s.number), Some(1));
        prop_assert_eq!(scan.pick("alice", None).map(|s| s.number), Some(2));
        prop_assert_eq!(scan.pick("alice", Some(9)), None);
    }

    #[test]
    fn a_cut_or_flipped_archive_is_found_out_and_earlier_snapshots_stay(
        (mailboxes, messages) in messages_strategy(),
        cut in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let first = snapshot(10, mailboxes, &messages);
        let second = snapshot(20, mailboxes, &[(0, b"one more".to_vec())]);
        let file = archive(&[first.clone(), second]);
        let whole = Scan::read(Cursor::new(&file)).unwrap();
        let second_at = whole.snapshots[1].offset as usize;
        // Cut anywhere inside the second snapshot (at its start is a clean end).
        let at = second_at + 1 + cut.index(file.len() - second_at - 1);
        let scan = Scan::read(Cursor::new(&file[..at])).unwrap();
        prop_assert_eq!(scan.snapshots.len(), 1);
        prop_assert_eq!(scan.usable_bytes as usize, second_at);
        prop_assert!(matches!(scan.damage, Some(ArchiveError::Truncated(_))), "{:?}", scan.damage);
        prop_assert_eq!(flat(&replayed(&file[..at], 0, None).unwrap()), flat(&first));
        // One bit flipped anywhere inside the second snapshot.
        let mut flipped = file.clone();
        flipped[at.min(file.len() - 1)] ^= 1 << bit;
        let scan = Scan::read(Cursor::new(&flipped)).unwrap();
        prop_assert_eq!(scan.snapshots.len(), 1);
        prop_assert!(scan.damage.is_some());
        prop_assert!(!matches!(scan.damage, Some(ArchiveError::Truncated(_))), "{:?}", scan.damage);
    }

    #[test]
    fn arbitrary_bytes_after_a_header_never_panic(tail in prop::collection::vec(any::<u8>(), 0..2000)) {
        let mut file = encode_header(1).to_vec();
        file.extend(tail);
        let scan = Scan::read(Cursor::new(&file)).unwrap();
        prop_assert!(scan.snapshots.is_empty() || scan.damage.is_none() || scan.damage.is_some());
    }
}

#[test]
fn replay_of_one_mailbox_renumbers_it_and_keeps_only_its_messages() {
    let messages = vec![(0, b"a".to_vec()), (1, b"b".to_vec()), (1, b"c".to_vec())];
    let file = archive(&[snapshot(10, 2, &messages)]);
    let records = replayed(&file, 0, Some("Box1")).unwrap();
    let Record::Start(start) = &records[0] else { panic!("a start first") };
    assert_eq!((start.mailboxes, start.messages), (1, 2));
    let Record::Messages(kept) = &records[3] else { panic!("{:?}", records[3]) };
    assert!(kept.iter().all(|m| m.mailbox == 0));
    assert_eq!(kept.iter().map(|m| m.uid).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(records[2], Record::Subscriptions(Vec::new()), "only the mailbox's own");
    let bodies: Vec<&[u8]> = records
        .iter()
        .filter_map(|r| match r {
            Record::Body { bytes, .. } => Some(&bytes[..]),
            _ => None,
        })
        .collect();
    assert_eq!(bodies, [b"b", b"c"]);
    let missing = replayed(&file, 0, Some("Nope")).unwrap_err();
    assert!(matches!(missing, ArchiveError::NoSuchMailbox(_)), "{missing}");
    let inbox = replayed(&file, 0, Some("inbox")).unwrap();
    assert!(matches!(&inbox[0], Record::Start(s) if s.messages == 1));
}

#[test]
fn a_stream_refuses_references_and_out_of_order_records() {
    let mut records = snapshot(1, 1, &[(0, b"x".to_vec())]);
    let body = records.len() - 2;
    records[body] = Record::Ref(sha256(b"x"));
    let error = decode(&stream_bytes(&records), 64).unwrap_err();
    assert!(error.to_string().contains("reference"), "{error}");
    let mut records = snapshot(1, 1, &[(0, b"x".to_vec())]);
    records.swap(1, 2);
    let error = decode(&stream_bytes(&records), 64).unwrap_err();
    assert!(error.to_string().contains("out of order"), "{error}");
    let error =
        decode(b"not an archive at all, not even close to a header.......................", 8);
    assert!(matches!(error, Err(ArchiveError::NotArchive(_))), "{error:?}");
}

#[test]
fn an_appender_refuses_a_body_whose_digest_is_wrong() {
    let mut appender = Appender::new(Vec::new(), None, 1).unwrap();
    let error = appender.push(&Record::Body { digest: [0; 32], bytes: b"x".to_vec() }).unwrap_err();
    assert!(matches!(error, ArchiveError::DigestMismatch));
}
