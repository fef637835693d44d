//! `skua backup` and `skua restore` against a running server: an archive stream
//! (`skua_core::backup`) carried as frames over the admin socket (`admin_proto.rs`).
//!
//! ```text
//!  shard 0 (the connection)                        the user's home shard (the store)
//!  backup: Begin ─────────────────────────────────► open, backup_begin: metadata in one step,
//!                                                    spool pinned; job kept in JOBS
//!          loop: Next ────────────────────────────► ≤ ADMIN_DATA_BYTES_MAX of records, encoded
//!                 ◄── bytes; write {"data":N}+bytes (waits for the client to read)
//!          {"end"}, {"ok":report}                    (the job ends with its last body)
//!  restore: Begin ────────────────────────────────► open, a Restorer kept in JOBS
//!          loop: read a frame, decode records (checksums, order) ─ Apply(records) ─► apply
//!          {"end"} read: Finish ──────────────────► job dropped, wait for a flush round ─► ok
//! ```
//!
//! The bytes never rest anywhere but in the two processes' memory: the archive file is
//! written and read by the CLI alone (nothing a client sends becomes a path here). Each side
//! makes its next step only after the previous one was written or applied, so one job holds
//! at most one step's records (plus one record being assembled) and one frame in memory. A
//! job whose connection went away (its request's deadline, a write that timed out) is ended
//! by the connection's task (`Abort`), or, if that task was cancelled, by the next `Begin` on
//! the shard once it has been idle for [`JOB_IDLE_MAX`]; at most [`ADMIN_CONNECTIONS_MAX`]
//! jobs live on a shard. A backup job pins its store's spool (compaction waits) until it ends.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use skua_core::backup::{Decoder, Record, Writer};
use skua_core::store::admin::SnapshotSource;
use skua_protocols::restore::Restorer;

use crate::admin::{call_error, users_of};
use crate::admin_proto::{
    AdminRequest, ErrorReply, Frame, Op, RestoreReport, StreamEnd, frame_line, parse_frame,
};
use crate::call::{self, CallError};
use crate::conn::{Connection, ReadOutcome};
use crate::guard::guarded;
use crate::limits::{
    ADMIN_CONNECTIONS_MAX, ADMIN_DATA_BYTES_MAX, ADMIN_FRAME_LINE_BYTES_MAX, ADMIN_IO_TIMEOUT_MS,
};
use crate::registry::UserHandle;
use crate::shard::Shard;

/// A job untouched this long lost its connection's task; the next `Begin` ends it.
const JOB_IDLE_MAX: Duration = Duration::from_millis(4 * ADMIN_IO_TIMEOUT_MS);

/// Runs a `backup` or `restore` request (one user) on `connection`.
pub(crate) async fn run(
    shard: &Rc<Shard>,
    connection: &mut Connection,
    request: &AdminRequest,
    rest: Vec<u8>,
) -> Result<serde_json::Value, ErrorReply> {
    let user = if request.op == Op::Backup {
        users_of(shard, request)?.pop().expect("parse_request: one user")
    } else {
        let name = &request.users[0];
        skua_core::paths::UserName::new(name)
            .map_err(|e| ErrorReply::new("no-such-user", format!("{name:?}: {e}")))?;
        name.clone()
    };
    let kind = if request.op == Op::Backup { Kind::Backup } else { Kind::Restore };
    let job = ask(shard, &user, Step::Begin(kind)).await?.job;
    let result = match kind {
        Kind::Backup => send_backup(shard, connection, &user, job).await,
        Kind::Restore => receive_restore(shard, connection, &user, job, rest).await,
    };
    if result.is_err() {
        let _ = ask(shard, &user, Step::Abort(job)).await;
    }
    result
}

async fn send_backup(
    shard: &Rc<Shard>,
    connection: &mut Connection,
    user: &str,
    job: u64,
) -> Result<serde_json::Value, ErrorReply> {
    let mut total = 0u64;
    let report = loop {
        let step = ask(shard, user, Step::Next(job)).await?;
        for piece in step.bytes.chunks(ADMIN_DATA_BYTES_MAX) {
            let header = frame_line(&Frame::Data(piece.len() as u64));
            connection.write_vectored_all(&[&header, piece]).await.map_err(gone)?;
            total += piece.len() as u64;
        }
        if let Some(done) = step.report {
            break done;
        }
    };
    let end = frame_line(&Frame::End(StreamEnd { bytes: total }));
    connection.write_all(&end).await.map_err(gone)?;
    Ok(report)
}

async fn receive_restore(
    shard: &Rc<Shard>,
    connection: &mut Connection,
    user: &str,
    job: u64,
    rest: Vec<u8>,
) -> Result<serde_json::Value, ErrorReply> {
    let mut input = Input { pending: rest, total: 0 };
    let mut decoder = Decoder::stream();
    let bad = |e: skua_core::backup::ArchiveError| ErrorReply::new("bad-request", e.to_string());
    loop {
        match input.frame(connection).await? {
            Frame::Data(len) => {
                let bytes = input.take(connection, len as usize).await?;
                decoder.feed(&bytes);
                let mut records = Vec::new();
                while let Some(record) = decoder.next_record().map_err(bad)? {
                    records.push(record);
                }
                if !records.is_empty() {
                    ask(shard, user, Step::Apply(job, records)).await?;
                }
            }
            Frame::End(end) => {
                if end.bytes != input.total {
                    return Err(ErrorReply::new(
                        "bad-request",
                        format!("the stream said {} bytes, {} came", end.bytes, input.total),
                    ));
                }
                decoder.finish().map_err(bad)?;
                break;
            }
        }
    }
    let done = ask(shard, user, Step::Finish(job)).await?;
    Ok(done.report.unwrap_or_default())
}

fn gone(error: std::io::Error) -> ErrorReply {
    ErrorReply::new("bad-request", format!("the client stopped reading: {error}"))
}

/// A restore's input: frame lines and data, bounded by a frame line and a data frame.
struct Input {
    pending: Vec<u8>,
    total: u64,
}

impl Input {
    async fn fill(&mut self, connection: &mut Connection) -> Result<(), ErrorReply> {
        let timeout = Duration::from_millis(ADMIN_IO_TIMEOUT_MS);
        match connection.read(timeout).await {
            Ok(ReadOutcome::Data(len)) => {
                self.pending.extend_from_slice(connection.input(len));
                Ok(())
            }
            Ok(ReadOutcome::Closed) => {
                Err(ErrorReply::new("bad-request", "the stream ended without its end frame"))
            }
            Ok(ReadOutcome::TimedOut) => Err(ErrorReply::new("timeout", "no stream data in time")),
            Err(error) => Err(ErrorReply::new("bad-request", error.to_string())),
        }
    }

    async fn frame(&mut self, connection: &mut Connection) -> Result<Frame, ErrorReply> {
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                return parse_frame(line[..end].strip_suffix(b"\r").unwrap_or(&line[..end]));
            }
            if self.pending.len() > ADMIN_FRAME_LINE_BYTES_MAX {
                return Err(ErrorReply::new("bad-request", "a frame line too long"));
            }
            self.fill(connection).await?;
        }
    }

    async fn take(
        &mut self,
        connection: &mut Connection,
        len: usize,
    ) -> Result<Vec<u8>, ErrorReply> {
        while self.pending.len() < len {
            self.fill(connection).await?;
        }
        self.total += len as u64;
        Ok(self.pending.drain(..len).collect())
    }
}

/// Asks the user's home shard for one step of a job.
async fn ask(shard: &Rc<Shard>, user: &str, step: Step) -> Result<Answer, ErrorReply> {
    match call::call(shard, StreamCall { user: user.to_owned(), step }).await {
        Ok(answer) => answer,
        Err(error) => Err(call_error(error)),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Backup,
    Restore,
}

/// One step of a job, served on the user's home shard.
enum Step {
    Begin(Kind),
    Next(u64),
    Apply(u64, Vec<Record>),
    Finish(u64),
    Abort(u64),
}

/// What a step gives back.
#[derive(Default)]
struct Answer {
    job: u64,
    bytes: Vec<u8>,
    /// The report, once the job is done.
    report: Option<serde_json::Value>,
}

struct StreamCall {
    user: String,
    step: Step,
}

/// A job on its home shard.
struct Job {
    handle: Rc<UserHandle>,
    touched: Instant,
    work: Work,
}

enum Work {
    Backup(Box<SnapshotSource>, Writer<Vec<u8>>, usize),
    Restore(Box<Restorer>),
}

thread_local! {
    /// This shard's jobs, by id.
    static JOBS: RefCell<(u64, HashMap<u64, Job>)> = RefCell::new((0, HashMap::new()));
}

fn now_unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl call::Request for StreamCall {
    type Answer = Result<Answer, ErrorReply>;
    const NAME: &'static str = "admin-stream";

    fn user(&self) -> &str {
        &self.user
    }

    async fn serve(self, shard: Rc<Shard>) -> Self::Answer {
        let job = match self.step {
            Step::Begin(kind) => return begin(&shard, &self.user, kind).await,
            Step::Next(job) | Step::Apply(job, _) | Step::Finish(job) | Step::Abort(job) => job,
        };
        let Some(mut entry) = JOBS.with(|jobs| jobs.borrow_mut().1.remove(&job)) else {
            return Err(ErrorReply::new("server-bug", "no such job (it was ended as idle)"));
        };
        let outcome = match self.step {
            Step::Next(_) | Step::Apply(..) if entry.handle.is_poisoned() => {
                Err(call_error(CallError::Unavailable))
            }
            Step::Next(_) => next(&shard, &mut entry, &self.user),
            Step::Apply(_, records) => apply(&shard, &mut entry, records),
            Step::Finish(_) => finish(&entry),
            Step::Abort(_) | Step::Begin(_) => Err(ErrorReply::new("aborted", "")),
        };
        let done = outcome.as_ref().map_or(true, |answer| answer.report.is_some());
        if done {
            shard.registry.release(entry.handle);
        } else {
            entry.touched = Instant::now();
            JOBS.with(|jobs| jobs.borrow_mut().1.insert(job, entry));
        }
        let answer = outcome?;
        if answer.report.is_some() {
            // What the job wrote is durable before the tool hears `ok`.
            let ticket = shard.commit.ticket();
            if let Err(error) = shard.commit.wait_durable(ticket).await {
                return Err(ErrorReply::new("storage", error.to_string()));
            }
        }
        Ok(answer)
    }

    fn refused(self, error: CallError) -> Self::Answer {
        Err(call_error(error))
    }
}

async fn begin(shard: &Rc<Shard>, user: &str, kind: Kind) -> Result<Answer, ErrorReply> {
    if shard.is_stopping() {
        return Err(call_error(CallError::Unavailable));
    }
    let stale: Vec<Job> = JOBS.with(|jobs| {
        let jobs = &mut jobs.borrow_mut().1;
        let ids: Vec<u64> = jobs
            .iter()
            .filter(|(_, j)| j.touched.elapsed() > JOB_IDLE_MAX)
            .map(|(id, _)| *id)
            .collect();
        ids.iter().filter_map(|id| jobs.remove(id)).collect()
    });
    stale.into_iter().for_each(|job| shard.registry.release(job.handle));
    if JOBS.with(|jobs| jobs.borrow().1.len()) >= ADMIN_CONNECTIONS_MAX {
        return Err(ErrorReply::new("busy", "too many backups and restores on this shard"));
    }
    let handle = shard
        .registry
        .open(user, crate::driver::yield_to_reactor)
        .await
        .map_err(|e| ErrorReply::new("storage", e.to_string()))?;
    if handle.is_poisoned() {
        shard.registry.release(handle);
        return Err(call_error(CallError::Unavailable));
    }
    let work = match kind {
        Kind::Backup => {
            let source = handle.with_store(|store| store.backup_begin(user, now_unix_millis()));
            let mut writer = Writer::new(Vec::new(), 0);
            writer.header(now_unix_millis()).expect("writing to memory");
            Work::Backup(Box::new(source), writer, 0)
        }
        Kind::Restore => Work::Restore(Box::new(Restorer::new())),
    };
    let job = Job { handle, touched: Instant::now(), work };
    let id = JOBS.with(|jobs| {
        let mut jobs = jobs.borrow_mut();
        jobs.0 += 1;
        let id = jobs.0;
        jobs.1.insert(id, job);
        id
    });
    Ok(Answer { job: id, ..Answer::default() })
}

/// The next records of a backup, encoded; the report with the last.
fn next(shard: &Shard, job: &mut Job, user: &str) -> Result<Answer, ErrorReply> {
    let Work::Backup(source, writer, messages) = &mut job.work else {
        return Err(ErrorReply::new("server-bug", "not a backup job"));
    };
    let step =
        guarded(|| job.handle.with_store(|store| source.next_records(store, ADMIN_DATA_BYTES_MAX)));
    let records = match step {
        Ok(records) => records.map_err(|e| ErrorReply::new("storage", e.to_string()))?,
        Err(detail) => {
            shard.note_panic("backup", &detail);
            shard.registry.poison(&job.handle);
            return Err(ErrorReply::new("server-bug", format!("the backup panicked: {detail}")));
        }
    };
    *messages = source.messages();
    let mut end = None;
    for record in &records {
        let totals = writer.record(record).expect("writing to memory");
        if matches!(record, Record::End(_)) {
            end = Some(totals);
        }
    }
    let bytes = std::mem::take(writer.get_mut());
    let report = end.map(|totals| {
        serde_json::json!({
            "user": user,
            "messages": totals.messages,
            "stream_bytes": writer.written(),
        })
    });
    Ok(Answer { job: 0, bytes, report })
}

/// Applies a restore's records to the store.
fn apply(shard: &Shard, job: &mut Job, records: Vec<Record>) -> Result<Answer, ErrorReply> {
    let Work::Restore(restorer) = &mut job.work else {
        return Err(ErrorReply::new("server-bug", "not a restore job"));
    };
    let step = guarded(|| {
        job.handle.with_store(|store| {
            records.into_iter().try_for_each(|record| restorer.apply(store, record))
        })
    });
    match step {
        Ok(result) => result.map_err(|e| ErrorReply::new("storage", e.to_string()))?,
        Err(detail) => {
            shard.note_panic("restore", &detail);
            shard.registry.poison(&job.handle);
            return Err(ErrorReply::new("server-bug", format!("the restore panicked: {detail}")));
        }
    }
    Ok(Answer::default())
}

/// Ends a restore: its counts.
fn finish(job: &Job) -> Result<Answer, ErrorReply> {
    let Work::Restore(restorer) = &job.work else {
        return Err(ErrorReply::new("server-bug", "not a restore job"));
    };
    if !restorer.is_finished() {
        return Err(ErrorReply::new("bad-request", "the stream ended inside its snapshot"));
    }
    let report = RestoreReport::of(&job.handle.name, &restorer.counts());
    let report = serde_json::to_value(report).expect("a report serializes");
    Ok(Answer { report: Some(report), ..Answer::default() })
}
