//! The admin socket's protocol (`ARCHITECTURE.md`, "Admin socket"): one JSON object per line
//! each way. Pure data and parsing, shared by the server (`admin.rs`) and the `skua` CLI, so
//! both sides agree on every field by construction.
//!
//! ```text
//!  client                                   server (shard 0, then each user's home shard)
//!  {"op":"check","users":["alice"]}\n ───►
//!                                      ◄─── {"progress":{"done":0,"total":1,"user":"alice"}}\n
//!                                      ◄─── {"ok":[{...report...}]}\n      (exactly one of
//!                                      ◄─── {"error":{"kind":"…","message":"…"}}\n   these)
//! ```
//!
//! One request per connection; the server closes after its final line.
//!
//! `backup` and `restore` carry an archive stream (`skua_core::backup`) as *frames*: a line
//! `{"data":N}` followed by exactly N raw bytes (1 ≤ N ≤ [`ADMIN_DATA_BYTES_MAX`]), as many as
//! needed, then `{"end":{"bytes":T}}` with T the stream's total. A backup's frames go server
//! to client between the request and the final line; a restore's go client to server right
//! after the request line, and the server answers once it has read the end frame:
//!
//! ```text
//!  {"op":"backup","users":["alice"]}\n ──►
//!                      ◄── {"data":1048576}\n<1 MiB> … {"end":{"bytes":T}}\n {"ok":{…}}\n
//!  {"op":"restore","users":["bob"]}\n{"data":N}\n<N bytes>…{"end":{"bytes":T}}\n ──►
//!                                                                ◄── {"ok":{…}}\n
//! ```
//!
//! Each side produces the next frame only once the previous one was written (a socket write
//! waits while the peer does not read), so a peer that stops reading holds at most one frame
//! and one step's records of the other side's memory, until the write times out.

use serde::{Deserialize, Serialize};

use crate::limits::{ADMIN_DATA_BYTES_MAX, ADMIN_FRAME_LINE_BYTES_MAX, ADMIN_REQUEST_BYTES_MAX};

/// The socket's file name in the data dir.
pub const ADMIN_SOCKET_FILE: &str = "admin.sock";

/// What to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    /// Is the server there? Answers its pid and version.
    Ping,
    /// `skua check`: a `CheckReport` per user.
    Check,
    /// `skua quota`: a `QuotaReport` per user.
    Quota,
    /// `skua mbexamine`: one `ExamineReport` (one user, `mailbox` required).
    Examine,
    /// `skua df`: a `UsageReport` per user.
    Df,
    /// `skua reconstruct`: refused while the server runs (see `admin.rs`).
    Reconstruct,
    /// `skua ipurge`: a `PurgeReport` per user (`older_than_days` and/or
    /// `larger_than_bytes`; `mailbox`, `dry_run` optional).
    Ipurge,
    /// `skua unexpunge`: one user and `mailbox`; an `ExpungedReport`, or with `restore` /
    /// `restore_all` a `RestoreReport` (in a list of one).
    Unexpunge,
    /// `skua deny USER…`: deny `users` the `services` (default imap) with `message`; the
    /// entries made (served on shard 0, `deny.rs`).
    Deny,
    /// `skua deny --allow USER…`: lift `users`' entries; the entries lifted.
    DenyAllow,
    /// `skua deny --list`: every entry.
    DenyList,
    /// `skua mboxlist dump`: a list of `MailboxLine`s per user.
    MboxlistDump,
    /// `skua mboxlist undump`: one user's `lines` made (an `UndumpReport`).
    MboxlistUndump,
    /// `skua arbitron`: an `ArbitronReport` per user.
    Arbitron,
    /// `skua backup`: one user; the server sends a snapshot of the store as frames, then a
    /// `BackupReport` (`admin_stream.rs`).
    Backup,
    /// `skua restore`: one user (the target); the client sends one snapshot as frames, then
    /// the server answers a `RestoreReport` (`admin_stream.rs`).
    Restore,
}

/// A request line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminRequest {
    /// What to do.
    pub op: Op,
    /// The users, as given (empty with `all`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Every user with a store.
    #[serde(default, skip_serializing_if = "is_false")]
    pub all: bool,
    /// The mailbox (`examine`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
    /// `quota --fix`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub fix: bool,
    /// `ipurge --days`: messages whose internal date is more than this many days old.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub older_than_days: Option<u32>,
    /// `ipurge --size`: messages larger than this many bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub larger_than_bytes: Option<u64>,
    /// `ipurge --dry-run`: report what would go, change nothing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
    /// `unexpunge --restore`: the expunged messages' UIDs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restore: Vec<u32>,
    /// `unexpunge --all-expunged`: restore every one still in the spool.
    #[serde(default, skip_serializing_if = "is_false")]
    pub restore_all: bool,
    /// `deny --services` (names as given; empty: imap).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    /// `deny --message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `mboxlist undump`: the dump's lines of the one user named.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<skua_core::store::admin::MailboxLine>,
    /// `arbitron --days`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
}

impl AdminRequest {
    /// A request for `op` with every other field empty.
    #[must_use]
    pub fn new(op: Op) -> AdminRequest {
        AdminRequest {
            op,
            users: Vec::new(),
            all: false,
            mailbox: None,
            fix: false,
            older_than_days: None,
            larger_than_bytes: None,
            dry_run: false,
            restore: Vec::new(),
            restore_all: false,
            services: Vec::new(),
            message: None,
            lines: Vec::new(),
            days: None,
        }
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_false(value: &bool) -> bool {
    !*value
}

/// A line from the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reply {
    /// Work under way (for a progress bar): zero or more before the last line.
    Progress(Progress),
    /// The last line: the operation's report.
    Ok(serde_json::Value),
    /// The last line: why there is no report.
    Error(ErrorReply),
}

/// How far a request got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Users done.
    pub done: u64,
    /// Users in all.
    pub total: u64,
    /// The user being worked on now.
    pub user: String,
}

/// Why a request failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// `bad-request`, `no-such-user`, `no-such-mailbox`, `not-restorable`, `mailbox-full`,
    /// `storage`, `busy`, `unavailable`, `refused`, `timeout`, `server-bug`.
    pub kind: String,
    /// For a person.
    pub message: String,
}

impl ErrorReply {
    /// An error of `kind`.
    #[must_use]
    pub fn new(kind: &str, message: impl Into<String>) -> ErrorReply {
        ErrorReply { kind: kind.to_owned(), message: message.into() }
    }
}

/// Parses one request line (without its line end) and checks it makes sense.
///
/// # Errors
/// A `bad-request` [`ErrorReply`] saying what is wrong.
pub fn parse_request(line: &[u8]) -> Result<AdminRequest, ErrorReply> {
    let bad = |message: String| ErrorReply::new("bad-request", message);
    if line.len() > ADMIN_REQUEST_BYTES_MAX {
        return Err(bad(format!("request longer than {ADMIN_REQUEST_BYTES_MAX} bytes")));
    }
    let request: AdminRequest =
        serde_json::from_slice(line).map_err(|e| bad(format!("not a request: {e}")))?;
    match request.op {
        Op::Ping => {}
        Op::DenyList => {
            if request.all || !request.users.is_empty() {
                return Err(bad("deny-list takes no users".to_owned()));
            }
        }
        Op::Deny | Op::DenyAllow => {
            if request.all || request.users.is_empty() {
                return Err(bad("deny takes users (not all)".to_owned()));
            }
        }
        Op::Examine => {
            if request.users.len() != 1 || request.all {
                return Err(bad("examine takes exactly one user".to_owned()));
            }
            if request.mailbox.is_none() {
                return Err(bad("examine needs a mailbox".to_owned()));
            }
        }
        Op::Ipurge | Op::Unexpunge => check_purge(&request).map_err(|m| bad(m.to_owned()))?,
        Op::MboxlistUndump => {
            if request.all || request.users.len() != 1 {
                return Err(bad("mboxlist-undump takes exactly one user".to_owned()));
            }
        }
        Op::Backup | Op::Restore => {
            if request.users.len() != 1 || request.all {
                return Err(bad(format!("{:?} takes exactly one user", request.op)));
            }
        }
        Op::Check | Op::Quota | Op::Df | Op::Reconstruct | Op::MboxlistDump | Op::Arbitron => {
            if request.all && !request.users.is_empty() {
                return Err(bad("give users or all, not both".to_owned()));
            }
            let empty_means_all = matches!(request.op, Op::Df | Op::MboxlistDump | Op::Arbitron);
            if !request.all && request.users.is_empty() && !empty_means_all {
                return Err(bad("no users (give users, or all)".to_owned()));
            }
        }
    }
    if request.mailbox.is_some() && !matches!(request.op, Op::Examine | Op::Ipurge | Op::Unexpunge)
    {
        return Err(bad("only examine, ipurge and unexpunge take a mailbox".to_owned()));
    }
    if request.fix && request.op != Op::Quota {
        return Err(bad("only quota takes fix".to_owned()));
    }
    let purge_fields = request.older_than_days.is_some()
        || request.larger_than_bytes.is_some()
        || !request.restore.is_empty()
        || request.restore_all;
    if purge_fields && !matches!(request.op, Op::Ipurge | Op::Unexpunge) {
        return Err(bad("only ipurge and unexpunge take their fields".to_owned()));
    }
    if request.dry_run && !matches!(request.op, Op::Ipurge | Op::MboxlistUndump) {
        return Err(bad("only ipurge and mboxlist-undump take dry_run".to_owned()));
    }
    if (!request.services.is_empty() || request.message.is_some()) && request.op != Op::Deny {
        return Err(bad("only deny takes services and a message".to_owned()));
    }
    if !request.lines.is_empty() && request.op != Op::MboxlistUndump {
        return Err(bad("only mboxlist-undump takes lines".to_owned()));
    }
    if request.days.is_some() && request.op != Op::Arbitron {
        return Err(bad("only arbitron takes days".to_owned()));
    }
    Ok(request)
}

/// The rules of the `ipurge` and `unexpunge` fields (each other op must leave them empty).
fn check_purge(request: &AdminRequest) -> Result<(), &'static str> {
    let purging = request.older_than_days.is_some() || request.larger_than_bytes.is_some();
    let restoring = !request.restore.is_empty() || request.restore_all;
    if request.op == Op::Ipurge {
        let has_users = !request.users.is_empty();
        if request.all && has_users || !request.all && !has_users {
            return Err("ipurge takes users or all (one of them)");
        }
        if !purging {
            return Err("ipurge needs older_than_days or larger_than_bytes");
        }
        if restoring {
            return Err("only unexpunge takes restore");
        }
        return Ok(());
    }
    if request.users.len() != 1 || request.all || request.mailbox.is_none() {
        return Err("unexpunge takes exactly one user and a mailbox");
    }
    if purging || request.dry_run {
        return Err("only ipurge takes older_than_days, larger_than_bytes and dry_run");
    }
    if !request.restore.is_empty() && request.restore_all {
        return Err("give restore or restore_all, not both");
    }
    if request.restore.contains(&0) {
        return Err("a UID is at least 1");
    }
    Ok(())
}

/// What `skua restore` did (the same report online, from the server, and offline).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreReport {
    /// The target user.
    pub user: String,
    /// The snapshot restored: when it was taken, unix milliseconds.
    pub snapshot_unix_millis: i64,
    /// Mailboxes made.
    pub mailboxes_created: u64,
    /// Messages written.
    pub messages_restored: u64,
    /// Messages the target already held (the same bytes in the same mailbox): skipped.
    pub messages_skipped: u64,
    /// Of those written, those that kept their UID.
    pub uids_kept: u64,
    /// Subscriptions added.
    pub subscriptions_added: u64,
    /// ACL entries set on mailboxes the restore made.
    pub acl_entries_set: u64,
}

impl RestoreReport {
    /// The report of `counts`, for `user`.
    #[must_use]
    pub fn of(user: &str, counts: &skua_protocols::restore::RestoreCounts) -> RestoreReport {
        RestoreReport {
            user: user.to_owned(),
            snapshot_unix_millis: counts.snapshot_unix_millis,
            mailboxes_created: counts.mailboxes_created as u64,
            messages_restored: counts.messages_restored as u64,
            messages_skipped: counts.messages_skipped as u64,
            uids_kept: counts.uids_kept as u64,
            subscriptions_added: counts.subscriptions_added as u64,
            acl_entries_set: counts.acl_entries_set as u64,
        }
    }
}

/// A frame line of a byte stream (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Frame {
    /// N raw bytes follow the line.
    Data(u64),
    /// The stream is over.
    End(StreamEnd),
}

/// The last frame of a stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamEnd {
    /// Bytes the stream carried in all (the data frames' sum).
    pub bytes: u64,
}

/// Parses a frame line (without its line end) and checks its bounds.
///
/// # Errors
/// A `bad-request` [`ErrorReply`]: not a frame, or a data frame of 0 or more than
/// [`ADMIN_DATA_BYTES_MAX`] bytes.
pub fn parse_frame(line: &[u8]) -> Result<Frame, ErrorReply> {
    let bad = |message: String| ErrorReply::new("bad-request", message);
    if line.len() > ADMIN_FRAME_LINE_BYTES_MAX {
        return Err(bad(format!("frame line longer than {ADMIN_FRAME_LINE_BYTES_MAX} bytes")));
    }
    let frame: Frame =
        serde_json::from_slice(line).map_err(|e| bad(format!("not a frame: {e}")))?;
    if let Frame::Data(len) = frame
        && (len == 0 || len > ADMIN_DATA_BYTES_MAX as u64)
    {
        return Err(bad(format!("data frame of {len} bytes (1 to {ADMIN_DATA_BYTES_MAX})")));
    }
    Ok(frame)
}

/// A frame as one line, with its line end.
#[must_use]
pub fn frame_line(frame: &Frame) -> Vec<u8> {
    json_line(frame)
}

/// A reply as one line, with its line end.
#[must_use]
pub fn reply_line(reply: &Reply) -> Vec<u8> {
    json_line(reply)
}

/// `value` as one JSON line, with its line end.
fn json_line(value: &impl Serialize) -> Vec<u8> {
    let mut line = serde_json::to_vec(value).expect("protocol types serialize");
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_nonsense_is_refused() {
        let check = parse_request(br#"{"op":"check","users":["alice","bob"]}"#).expect("ok");
        assert_eq!(check.op, Op::Check);
        assert_eq!(check.users, ["alice", "bob"]);
        let all = parse_request(br#"{"op":"df","all":true}"#).expect("ok");
        assert!(all.all);
        assert!(parse_request(br#"{"op":"df"}"#).is_ok(), "df defaults to every user");
        let examine =
            parse_request(br#"{"op":"examine","users":["a"],"mailbox":"INBOX"}"#).expect("ok");
        assert_eq!(examine.mailbox.as_deref(), Some("INBOX"));
        let deny =
            parse_request(br#"{"op":"deny","users":["a"],"services":["lmtp"],"message":"m"}"#)
                .expect("ok");
        assert_eq!(
            (deny.op, &deny.services[..], deny.message.as_deref()),
            (Op::Deny, &["lmtp".to_owned()][..], Some("m"))
        );
        assert_eq!(parse_request(br#"{"op":"deny-list"}"#).expect("ok").op, Op::DenyList);
        for bad in [
            &br#"{"op":"check"}"#[..],
            br#"{"op":"check","users":["a"],"all":true}"#,
            br#"{"op":"examine","users":["a"]}"#,
            br#"{"op":"examine","users":["a","b"],"mailbox":"INBOX"}"#,
            br#"{"op":"check","users":["a"],"mailbox":"INBOX"}"#,
            br#"{"op":"check","users":["a"],"fix":true}"#,
            br#"{"op":"deny"}"#,
            br#"{"op":"mboxlist-undump","users":["a","b"]}"#,
            br#"{"op":"mboxlist-dump","dry_run":true}"#,
            br#"{"op":"check","users":["a"],"days":3}"#,
            br#"{"op":"deny","all":true}"#,
            br#"{"op":"deny-allow","users":["a"],"services":["imap"]}"#,
            br#"{"op":"deny-list","users":["a"]}"#,
            br#"{"op":"check","users":["a"],"message":"x"}"#,
            br#"{"op":"format","users":["a"]}"#,
            br#"{"op":"check","users":["a"],"extra":1}"#,
            br#"{"op":"check","users":"a"}"#,
            b"not json",
            b"",
        ] {
            let error = parse_request(bad).expect_err(&String::from_utf8_lossy(bad));
            assert_eq!(error.kind, "bad-request");
        }
    }

    #[test]
    fn ipurge_and_unexpunge_requests_parse_and_nonsense_is_refused() {
        let purge =
            parse_request(br#"{"op":"ipurge","all":true,"older_than_days":30,"dry_run":true}"#)
                .expect("ok");
        assert_eq!((purge.older_than_days, purge.dry_run), (Some(30), true));
        let sized = br#"{"op":"ipurge","users":["a"],"larger_than_bytes":9,"mailbox":"Junk"}"#;
        assert_eq!(parse_request(sized).expect("ok").larger_than_bytes, Some(9));
        let list = parse_request(br#"{"op":"unexpunge","users":["a"],"mailbox":"INBOX"}"#);
        assert!(list.expect("ok").restore.is_empty());
        let restore = br#"{"op":"unexpunge","users":["a"],"mailbox":"INBOX","restore":[3,4]}"#;
        assert_eq!(parse_request(restore).expect("ok").restore, [3, 4]);
        for bad in [
            &br#"{"op":"ipurge","users":["a"]}"#[..],
            br#"{"op":"ipurge","older_than_days":1}"#,
            br#"{"op":"ipurge","users":["a"],"all":true,"older_than_days":1}"#,
            br#"{"op":"ipurge","users":["a"],"older_than_days":-1}"#,
            br#"{"op":"ipurge","users":["a"],"older_than_days":1,"restore_all":true}"#,
            br#"{"op":"unexpunge","users":["a"]}"#,
            br#"{"op":"unexpunge","users":["a","b"],"mailbox":"INBOX"}"#,
            br#"{"op":"unexpunge","all":true,"mailbox":"INBOX"}"#,
            br#"{"op":"unexpunge","users":["a"],"mailbox":"I","restore":[1],"restore_all":true}"#,
            br#"{"op":"unexpunge","users":["a"],"mailbox":"I","restore":[0]}"#,
            br#"{"op":"unexpunge","users":["a"],"mailbox":"I","dry_run":true}"#,
            br#"{"op":"check","users":["a"],"older_than_days":1}"#,
            br#"{"op":"df","restore":[1]}"#,
        ] {
            let error = parse_request(bad).expect_err(&String::from_utf8_lossy(bad));
            assert_eq!(error.kind, "bad-request");
        }
        let mut request = AdminRequest::new(Op::Ipurge);
        request.users.push("alice".to_owned());
        request.larger_than_bytes = Some(1 << 20);
        let line = serde_json::to_vec(&request).expect("serializes");
        assert_eq!(parse_request(&line).expect("reads back"), request);
    }

    #[test]
    fn a_request_over_the_bound_is_refused_before_parsing() {
        let mut line = br#"{"op":"check","users":["#.to_vec();
        while line.len() <= ADMIN_REQUEST_BYTES_MAX {
            line.extend_from_slice(br#""alice","#);
        }
        line.extend_from_slice(br#""bob"]}"#);
        let error = parse_request(&line).expect_err("too long");
        assert!(error.message.contains("longer than"), "{}", error.message);
    }

    #[test]
    fn frames_read_back_and_their_bounds_hold() {
        for frame in [
            Frame::Data(1),
            Frame::Data(ADMIN_DATA_BYTES_MAX as u64),
            Frame::End(StreamEnd { bytes: 7 }),
        ] {
            let line = frame_line(&frame);
            assert_eq!(parse_frame(&line[..line.len() - 1]).expect("reads back"), frame);
        }
        assert_eq!(frame_line(&Frame::Data(5)), b"{\"data\":5}\n");
        assert_eq!(frame_line(&Frame::End(StreamEnd { bytes: 5 })), b"{\"end\":{\"bytes\":5}}\n");
        let too_big = format!("{{\"data\":{}}}", ADMIN_DATA_BYTES_MAX + 1);
        for bad in [
            &b"{\"data\":0}"[..],
            too_big.as_bytes(),
            br#"{"ok":1}"#,
            br#"{"end":{}}"#,
            b"",
            &[b' '; 300],
        ] {
            assert_eq!(
                parse_frame(bad).expect_err(&String::from_utf8_lossy(bad)).kind,
                "bad-request"
            );
        }
        let backup = parse_request(br#"{"op":"backup","users":["a"]}"#).expect("ok");
        assert_eq!(backup.op, Op::Backup);
        assert!(parse_request(br#"{"op":"restore","users":["a","b"]}"#).is_err());
        assert!(parse_request(br#"{"op":"backup","all":true}"#).is_err());
    }

    #[test]
    fn replies_are_one_line_each_and_read_back() {
        let replies = [
            Reply::Progress(Progress { done: 1, total: 2, user: "alice".to_owned() }),
            Reply::Ok(serde_json::json!([{"user": "alice"}])),
            Reply::Error(ErrorReply::new("no-such-user", "user x has no store")),
        ];
        let expected = [
            r#"{"progress":{"done":1,"total":2,"user":"alice"}}"#,
            r#"{"ok":[{"user":"alice"}]}"#,
            r#"{"error":{"kind":"no-such-user","message":"user x has no store"}}"#,
        ];
        for (reply, text) in replies.iter().zip(expected) {
            let line = reply_line(reply);
            assert_eq!(line.last(), Some(&b'\n'));
            assert_eq!(&line[..line.len() - 1], text.as_bytes());
            let back: Reply = serde_json::from_slice(&line).expect("reads back");
            assert_eq!(&back, reply);
        }
    }
}
