//! SORT and THREAD on mailboxes big enough to need many slices: the answers match orders
//! computed here from what was delivered, the work pauses between slices (`Step::Yield`), the
//! response is written a bounded amount at a time, and messages whose cache blob is of format
//! versions 1 (no key section) and 2 (key section last) sort exactly like the others.

mod imap_support;

use imap_support::{Client, World, tagged};
use skua_core::types::{Flags, InternalDate};
use skua_protocols::imap::limits::SLICE_OUTPUT_BYTES_MAX;
use skua_protocols::mime::cache::{CacheView, build};

/// One generated message and the keys this test expects SORT to use.
struct Generated {
    raw: String,
    /// Base subject, upper-cased (i;ascii-casemap).
    base: String,
    sent: i64,
    arrival: i64,
    from: String,
}

/// Deterministic xorshift generator.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// An RFC 5322 date for `seconds` since the epoch in UTC (January 2024 only).
fn rfc5322(seconds: i64) -> String {
    let base = 1_704_067_200; // 2024-01-01T00:00:00Z, a Monday
    let offset = seconds - base;
    let day = offset / 86_400;
    let rest = offset % 86_400;
    let weekday = WEEKDAYS[usize::try_from((seconds / 86_400) % 7).unwrap()];
    format!(
        "{weekday}, {:02} Jan 2024 {:02}:{:02}:{:02} +0000",
        day + 1,
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn generate(count: usize) -> Vec<Generated> {
    let mut random = Random(0x5eed_1234_abcd_0001);
    let leaders = ["", "Re: ", "RE: re: ", "Fwd: ", "[list] ", "[list] Re: "];
    (0..count)
        .map(|i| {
            let topic = random.below(400);
            let leader = leaders[usize::try_from(random.below(6)).unwrap()];
            let sent = 1_704_067_200 + i64::try_from(random.below(28 * 86_400)).unwrap();
            let arrival = 1_706_745_600 + i64::try_from(random.below(86_400 * 20)).unwrap();
            let from = format!("user{}", random.below(50));
            let parent = if i > 0 && random.below(3) == 0 { random.below(i as u64) } else { 0 };
            let references = if parent > 0 { format!("References: <m{parent}@x>\r\n") } else { String::new() };
            let raw = format!(
                "Date: {}\r\nSubject: {leader}topic {topic}\r\nFrom: Someone <{from}@x.org>\r\nMessage-ID: <m{i}@x>\r\n{references}\r\nbody {i}\r\n",
                rfc5322(sent)
            );
            Generated { raw, base: format!("TOPIC {topic}"), sent, arrival, from: from.to_uppercase() }
        })
        .collect()
}

/// `blob` (version 3) as format version 2 wrote it (key section after the part table), or as
/// version 1 did (no key section).
fn older(blob: &[u8], version: u8) -> Vec<u8> {
    let keys_len = u32::from_le_bytes(blob[20..24].try_into().expect("4 bytes")) as usize;
    let mut old = blob[..20].to_vec();
    old.extend_from_slice(&blob[24 + keys_len..]);
    old[3] = version;
    if version == 2 {
        old.extend_from_slice(&blob[20..24 + keys_len]);
    }
    assert!(CacheView::parse(&old).is_ok(), "version {version} parses");
    old
}

/// A store with `messages` in INBOX (every seventh with a version 1 blob, every seventh with a
/// version 2 blob), selected.
fn setup(messages: &[Generated]) -> (World, Client) {
    let mut world = World::new();
    let inbox = world.store.mailbox_id("INBOX").expect("INBOX");
    for (index, message) in messages.iter().enumerate() {
        let raw = message.raw.as_bytes();
        let mut blob = build(raw);
        if index % 7 == 3 {
            blob = older(&blob, 1);
        } else if index % 7 == 5 {
            blob = older(&blob, 2);
        }
        let date = InternalDate { unix_seconds: message.arrival, zone_minutes: 0 };
        world.store.append(inbox, raw, &blob, Flags::default(), Some(date)).expect("append");
    }
    world.flush();
    let mut client = Client::new();
    client.login(&mut world);
    tagged(&client.command(&mut world, "s SELECT INBOX"), "s OK");
    (world, client)
}

fn numbers(line: &str, prefix: &str) -> Vec<u32> {
    line[prefix.len()..].split_whitespace().map(|n| n.parse().expect("number")).collect()
}

fn sorted_by<K: Ord>(messages: &[Generated], key: impl Fn(&Generated) -> K) -> Vec<u32> {
    let mut order: Vec<u32> = (1..=u32::try_from(messages.len()).unwrap()).collect();
    order.sort_by_key(|&msn| (key(&messages[msn as usize - 1]), msn));
    order
}

#[test]
fn sort_over_many_slices_matches_the_expected_orders() {
    let messages = generate(3000);
    let (mut world, mut client) = setup(&messages);
    let cases: [(&str, Vec<u32>); 4] = [
        ("(ARRIVAL)", sorted_by(&messages, |m| m.arrival)),
        ("(DATE)", sorted_by(&messages, |m| m.sent)),
        ("(SUBJECT)", sorted_by(&messages, |m| m.base.clone())),
        (
            "(FROM REVERSE DATE)",
            sorted_by(&messages, |m| (m.from.clone(), std::cmp::Reverse(m.sent))),
        ),
    ];
    for (criteria, expected) in cases {
        let yields = client.yields;
        let reply = client.command(&mut world, &format!("q SORT {criteria} UTF-8 ALL"));
        tagged(&reply, "q OK SORT completed");
        let line = reply.iter().find(|l| l.starts_with("* SORT")).expect("SORT reply");
        assert_eq!(numbers(line, "* SORT"), expected, "SORT {criteria}");
        assert!(client.yields - yields >= 10, "{criteria}: gathered in slices");
    }
}

#[test]
fn thread_covers_every_match_once() {
    let messages = generate(2000);
    let (mut world, mut client) = setup(&messages);
    for algorithm in ["ORDEREDSUBJECT", "REFERENCES", "REFS"] {
        let reply = client.command(&mut world, &format!("q THREAD {algorithm} UTF-8 ALL"));
        tagged(&reply, "q OK THREAD completed");
        let line = reply.iter().find(|l| l.starts_with("* THREAD")).expect("THREAD reply");
        let mut seen: Vec<u32> = line["* THREAD".len()..]
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|n| n.parse().unwrap())
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (1..=2000).collect::<Vec<u32>>(), "{algorithm}");
        let depth = line.chars().fold((0i64, 0i64), |(depth, low), c| match c {
            '(' => (depth + 1, low),
            ')' => (depth - 1, low.min(depth - 1)),
            _ => (depth, low),
        });
        assert_eq!(depth, (0, 0), "{algorithm}: balanced parentheses");
    }
}

#[test]
fn a_large_sort_response_is_written_in_bounded_pieces() {
    // Tiny messages: the `* SORT` line of 50,000 numbers of up to five digits is over 256 KiB.
    let count = 50_000;
    let messages: Vec<Generated> = (0..count)
        .map(|i| Generated {
            raw: format!("Subject: s\r\n\r\n{i}\r\n"),
            base: String::new(),
            sent: 0,
            arrival: 1_706_745_600 + i64::from(i),
            from: String::new(),
        })
        .collect();
    let (mut world, mut client) = setup(&messages);
    let writes = client.writes;
    let reply = client.command(&mut world, "q UID SORT (REVERSE ARRIVAL) UTF-8 ALL");
    tagged(&reply, "q OK SORT completed");
    let line = reply.iter().find(|l| l.starts_with("* SORT")).expect("SORT reply");
    assert!(line.len() > SLICE_OUTPUT_BYTES_MAX, "the test must need several writes");
    let got = numbers(line, "* SORT");
    assert_eq!(got.len(), 50_000);
    assert_eq!(got.first(), Some(&50_000));
    assert_eq!(got.last(), Some(&1));
    assert!(client.writes - writes >= 2, "written in pieces");
    // One slice's budget, plus the tagged reply that follows the last piece.
    assert!(client.largest_write <= SLICE_OUTPUT_BYTES_MAX + 256, "{}", client.largest_write);
}
