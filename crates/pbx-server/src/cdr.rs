//! Durable call detail records: the [`CdrSink`] the call engine reports calls to.
//!
//! # Contract for the call engine
//!
//! - [`CdrSink`] is a cheap `Clone` handle; its methods never block and never fail, so they
//!   are called straight from synchronous SIP callbacks on the driver task.
//! - [`CdrSink::call_started`] with the open record ([`CallRecord::open`]) as soon as the call
//!   is admitted: the record is written *open* with the next batch (see below), so a crash
//!   mid-call leaves a row that the next start closes as `interrupted` at the last time the
//!   call was known alive.
//! - [`CdrSink::call_updated`] after [`CallRecord::rang`] / [`CallRecord::answered`].
//! - [`CdrSink::call_ended`] with the record after [`CallRecord::close`] (the final record,
//!   media statistics included). A closed record is final: later writes of the same id are
//!   ignored.
//!
//! # Batches
//!
//! A background task (started by [`CdrSink::start`]) writes to the store in batches, like
//! the registration writer (`crate::writer`): when a record arrives it waits
//! [`CdrOptions::linger`] (20 ms by default) for more, then takes everything queued, up to
//! [`BATCH`] records, folds the writes of each call into that call's latest state
//! ([`pbx_store::Cdrs::coalesce`]: an open record never overwrites a closed one) and writes
//! them in one transaction ([`pbx_store::Cdrs::upsert_many`]). Under load one commit carries
//! hundreds of call states instead of three statements and commits per call. So a record
//! is durable (in the store or the journal) at most `linger` plus one batch write after it
//! was submitted; [`CdrSink::flush`] skips the wait.
//!
//! # Durability
//!
//! When a batch fails because the store is down, the whole batch — every submitted record,
//! in submission order — is appended to an fsync'd JSON-lines journal in the data directory
//! (`cdr-journal.jsonl`; one fsync per batch), and from then on batches go to the journal
//! (keeping their order) until a replay into the store succeeds; the task retries every
//! `retry` interval and replays in batches too. If the task's queue is full, the caller
//! appends to the journal itself. So a database error never loses a CDR. When the database
//! refuses a batch for a reason a retry cannot fix (a constraint), its calls are written one
//! by one, and only the record it refuses is moved to `cdr-rejected.jsonl` for an operator
//! to look at, never dropped; the others are stored.
//!
//! At start, the journal is replayed first, then every record this node left open before
//! the start is closed as `interrupted` ([`pbx_store::Cdrs::close_interrupted`]). While calls
//! run, the task marks open records alive every `heartbeat`, which bounds the error of an
//! interrupted call's end time.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pbx_domain::{CallRecord, CdrId};
use pbx_store::{Cdrs, Store, StoreError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The journal file name in the data directory.
pub const JOURNAL_FILE: &str = "cdr-journal.jsonl";
/// Records the database refused for good.
pub const REJECTED_FILE: &str = "cdr-rejected.jsonl";
/// Most records taken from the queue per batch (one transaction).
pub const BATCH: usize = 512;

/// Tuning of the CDR writer.
#[derive(Debug, Clone)]
pub struct CdrOptions {
    /// This node's id (records it left open are closed at its next start).
    pub node_id: String,
    /// Queue length between the call engine and the writer task.
    pub queue: usize,
    /// How often a non-empty journal is replayed into the store.
    pub retry: Duration,
    /// How often open records are marked alive.
    pub heartbeat: Duration,
    /// How long the writer waits, once a record arrived, for more to fill the batch (zero:
    /// write whatever is queued at once). Bounds how late a record becomes durable.
    pub linger: Duration,
}

impl CdrOptions {
    /// Defaults for `node_id`: queue 65,536, retry 2 s, heartbeat 15 s, linger 20 ms.
    pub fn new(node_id: impl Into<String>) -> Self {
        Self {
            node_id: node_id.into(),
            queue: 65_536,
            retry: Duration::from_secs(2),
            heartbeat: Duration::from_secs(15),
            linger: Duration::from_millis(20),
        }
    }
}

/// Counters of the CDR path (for metrics and tests).
#[derive(Debug, Default)]
pub struct CdrStats {
    /// Records written to the store directly.
    pub stored: AtomicU64,
    /// Batches committed to the store directly (transactions; records per batch is
    /// `stored / batches` while nothing is refused).
    pub batches: AtomicU64,
    /// Records appended to the journal.
    pub journaled: AtomicU64,
    /// Journaled records replayed into the store.
    pub replayed: AtomicU64,
    /// Records moved to the rejected file.
    pub rejected: AtomicU64,
    /// Records in the journal right now.
    pub pending: AtomicU64,
    /// Records closed as interrupted at start.
    pub interrupted: AtomicU64,
}

enum Op {
    Write(Box<CallRecord>),
    Flush(oneshot::Sender<()>),
}

/// The call engine's handle on the CDR writer. Cheap to clone; never blocks.
#[derive(Debug, Clone)]
pub struct CdrSink {
    queue: mpsc::Sender<Op>,
    journal: Arc<Mutex<Journal>>,
    stats: Arc<CdrStats>,
    node_id: Arc<str>,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Write(record) => write!(f, "Write({})", record.id),
            Self::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl CdrSink {
    /// Recovers (journal replay, then closing this node's records left open before now) and
    /// spawns the writer task. The task ends when every sink clone is dropped, after a last
    /// replay attempt.
    pub async fn start(
        store: Store,
        data_dir: &Path,
        options: CdrOptions,
    ) -> std::io::Result<(Self, JoinHandle<()>)> {
        let journal = Arc::new(Mutex::new(Journal::open(data_dir)?));
        let stats = Arc::new(CdrStats::default());
        let (queue, receiver) = mpsc::channel(options.queue.max(1));
        let writer = Writer {
            store,
            journal: Arc::clone(&journal),
            stats: Arc::clone(&stats),
            node_id: options.node_id.clone(),
        };
        let pending = writer.journal_len();
        writer.stats.pending.store(pending, Ordering::Relaxed);
        let boot_ms = pbx_api::now_ms();
        let recovered = writer.recover(boot_ms).await;
        let task = tokio::spawn(writer.run(receiver, options.clone(), (boot_ms, recovered)));
        Ok((
            Self {
                queue,
                journal,
                stats,
                node_id: options.node_id.into(),
            },
            task,
        ))
    }

    /// The call was admitted: write its open record (with the next batch).
    pub fn call_started(&self, record: &CallRecord) {
        self.submit(record);
    }

    /// Ringing or answer: write the updated open record.
    pub fn call_updated(&self, record: &CallRecord) {
        self.submit(record);
    }

    /// The call ended: write the final (closed) record.
    pub fn call_ended(&self, record: &CallRecord) {
        self.submit(record);
    }

    /// This node's id (put it in [`pbx_domain::CallStart::node_id`]).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Counters.
    pub fn stats(&self) -> &CdrStats {
        &self.stats
    }

    /// Waits until every record submitted before this call is durable (in the store or
    /// the journal), without the batch's linger. For tests and shutdown.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Op::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    fn submit(&self, record: &CallRecord) {
        match self.queue.try_send(Op::Write(Box::new(record.clone()))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(Op::Write(record)))
            | Err(mpsc::error::TrySendError::Closed(Op::Write(record))) => {
                // Overload or shutdown: the journal keeps it (replayed by the writer).
                let journal = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
                match journal.append(std::slice::from_ref(&*record)) {
                    Ok(()) => {
                        self.stats.journaled.fetch_add(1, Ordering::Relaxed);
                        self.stats.pending.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => {
                        tracing::error!(%error, cdr = %record.id, record = ?record, "CDR could not be queued or journaled");
                    }
                }
            }
            Err(_) => {}
        }
    }
}

/// The append-only, fsync'd journal.
#[derive(Debug)]
struct Journal {
    path: PathBuf,
    rejected: PathBuf,
}

impl Journal {
    fn open(data_dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        Ok(Self {
            path: data_dir.join(JOURNAL_FILE),
            rejected: data_dir.join(REJECTED_FILE),
        })
    }

    /// Appends `records` in order with one write and one fsync.
    fn append_to(path: &Path, records: &[&CallRecord]) -> std::io::Result<()> {
        let mut lines = Vec::with_capacity(records.len() * 512);
        for record in records {
            serde_json::to_writer(&mut lines, record).map_err(std::io::Error::other)?;
            lines.push(b'\n');
        }
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        file.write_all(&lines)?;
        file.sync_data()
    }

    fn append(&self, records: &[CallRecord]) -> std::io::Result<()> {
        Self::append_to(&self.path, &records.iter().collect::<Vec<_>>())
    }

    fn append_refs(&self, records: &[&CallRecord]) -> std::io::Result<()> {
        Self::append_to(&self.path, records)
    }

    fn reject(&self, record: &CallRecord) -> std::io::Result<()> {
        Self::append_to(&self.rejected, &[record])
    }

    /// Every complete record; a torn last line (crash during a write) is skipped.
    fn read_all(&self) -> std::io::Result<Vec<CallRecord>> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        let mut records = Vec::new();
        for line in BufReader::new(file).lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str(&line) {
                Ok(record) => records.push(record),
                Err(error) => tracing::warn!(%error, "skipping a torn CDR journal line"),
            }
        }
        Ok(records)
    }

    fn clear(&self) -> std::io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }
}

struct Writer {
    store: Store,
    journal: Arc<Mutex<Journal>>,
    stats: Arc<CdrStats>,
    node_id: String,
}

/// Whether the database refused the record itself (it will refuse it again), as opposed
/// to being unreachable or unwritable right now.
fn refused_for_good(error: &StoreError) -> bool {
    use sqlx::error::ErrorKind;
    match error {
        StoreError::Conflict { .. }
        | StoreError::InvalidReference { .. }
        | StoreError::CorruptRow { .. } => true,
        StoreError::Database(inner) => inner.as_database_error().is_some_and(|db| {
            matches!(
                db.kind(),
                ErrorKind::CheckViolation | ErrorKind::NotNullViolation
            )
        }),
        _ => false,
    }
}

enum Outcome {
    Stored,
    Rejected,
    Down,
}

/// What became of a batch written to the store.
struct Written<'a> {
    /// Submitted records now in the store.
    stored: u64,
    /// Whether it took one transaction (no record refused).
    whole: bool,
    /// Submitted records not written because the store is down, in submission order (to
    /// journal).
    unstored: Vec<&'a CallRecord>,
}

/// Why the writer task woke up.
enum Wake {
    Queue(usize),
    Retry,
    Heartbeat,
}

impl Writer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn journal_len(&self) -> u64 {
        self.lock()
            .read_all()
            .map_or(0, |records| records.len() as u64)
    }

    /// Replays the journal, then closes the records this node left open before `boot_ms`.
    /// False when the store was not available for either.
    async fn recover(&self, boot_ms: i64) -> bool {
        if !self.replay().await {
            tracing::warn!(
                "CDR journal not replayed at start (store unavailable); open records are closed once it is"
            );
            return false;
        }
        self.close_interrupted(boot_ms).await
    }

    async fn close_interrupted(&self, before_ms: i64) -> bool {
        match self
            .store
            .cdrs()
            .close_interrupted(&self.node_id, before_ms)
            .await
        {
            Ok(closed) => {
                if !closed.is_empty() {
                    tracing::warn!(
                        count = closed.len(),
                        "closed CDRs of calls interrupted by the last stop"
                    );
                }
                self.stats
                    .interrupted
                    .fetch_add(closed.len() as u64, Ordering::Relaxed);
                true
            }
            Err(error) => {
                tracing::error!(%error, "could not close interrupted CDRs; retrying");
                false
            }
        }
    }

    async fn store_one(&self, record: &CallRecord) -> Outcome {
        match self.store.cdrs().upsert(record).await {
            Ok(()) => Outcome::Stored,
            Err(error) if refused_for_good(&error) => {
                tracing::error!(%error, cdr = %record.id, "database refused a CDR; kept in {REJECTED_FILE}");
                if let Err(io) = self.lock().reject(record) {
                    tracing::error!(error = %io, record = ?record, "CDR could not be written to the rejected file");
                }
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                Outcome::Rejected
            }
            Err(error) => {
                tracing::warn!(%error, cdr = %record.id, "CDR store write failed; journaling");
                Outcome::Down
            }
        }
    }

    /// Writes `records` (submission order) to the store: each call's latest state, all in
    /// one transaction; when the database refuses that for good, call by call, so only the
    /// refused record goes to the rejected file.
    async fn store_batch<'a>(&self, records: &'a [CallRecord]) -> Written<'a> {
        let calls = Cdrs::coalesce(records);
        let error = match self.store.cdrs().upsert_many(&calls).await {
            Ok(()) => {
                return Written {
                    stored: records.len() as u64,
                    whole: true,
                    unstored: Vec::new(),
                };
            }
            Err(error) => error,
        };
        if !refused_for_good(&error) {
            tracing::warn!(%error, records = records.len(), "CDR batch write failed; journaling");
            return Written {
                stored: 0,
                whole: false,
                unstored: records.iter().collect(),
            };
        }
        tracing::warn!(%error, calls = calls.len(), "CDR batch refused; writing its calls one by one");
        let mut writes: HashMap<CdrId, u64> = HashMap::with_capacity(calls.len());
        for record in records {
            *writes.entry(record.id).or_default() += 1;
        }
        let mut stored = 0;
        for (at, call) in calls.iter().enumerate() {
            match self.store_one(call).await {
                Outcome::Stored => stored += writes.get(&call.id).copied().unwrap_or(1),
                Outcome::Rejected => {}
                Outcome::Down => {
                    let done: HashSet<CdrId> = calls[..at].iter().map(|call| call.id).collect();
                    return Written {
                        stored,
                        whole: false,
                        unstored: records.iter().filter(|r| !done.contains(&r.id)).collect(),
                    };
                }
            }
        }
        Written {
            stored,
            whole: false,
            unstored: Vec::new(),
        }
    }

    /// Replays the journal into the store, in batches; true when it is empty afterwards.
    async fn replay(&self) -> bool {
        let records = match self.lock().read_all() {
            Ok(records) => records,
            Err(error) => {
                tracing::error!(%error, "CDR journal unreadable");
                return false;
            }
        };
        if records.is_empty() {
            return true;
        }
        for batch in records.chunks(BATCH) {
            if !self.store_batch(batch).await.unstored.is_empty() {
                return false;
            }
        }
        // Records appended meanwhile by an overloaded caller must not be lost with the file.
        let journal = self.lock();
        let now_there = journal.read_all().unwrap_or_default();
        if now_there.len() > records.len() {
            return false;
        }
        if let Err(error) = journal.clear() {
            tracing::error!(%error, "CDR journal could not be cleared after replay");
            return false;
        }
        drop(journal);
        self.stats
            .replayed
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        self.stats.pending.store(0, Ordering::Relaxed);
        tracing::info!(count = records.len(), "CDR journal replayed into the store");
        true
    }

    /// Writes one batch of submitted records: to the store while the journal is empty,
    /// else (or when the store is down) to the journal, in order.
    async fn write(&self, records: &[CallRecord]) {
        if records.is_empty() {
            return;
        }
        let unstored: Vec<&CallRecord> = if self.stats.pending.load(Ordering::Relaxed) == 0 {
            let written = self.store_batch(records).await;
            self.stats
                .stored
                .fetch_add(written.stored, Ordering::Relaxed);
            if written.whole {
                self.stats.batches.fetch_add(1, Ordering::Relaxed);
            }
            written.unstored
        } else {
            records.iter().collect()
        };
        if unstored.is_empty() {
            return;
        }
        match self.lock().append_refs(&unstored) {
            Ok(()) => {
                let count = unstored.len() as u64;
                self.stats.journaled.fetch_add(count, Ordering::Relaxed);
                self.stats.pending.fetch_add(count, Ordering::Relaxed);
            }
            Err(error) => {
                tracing::error!(%error, records = ?unstored, "CDRs could not be journaled");
            }
        }
    }

    /// Writes the records in `ops`, then answers its flushes; empties `ops`.
    /// Writes the batch in `ops` (drained). `records` is the writer's reused buffer (a
    /// batch of 512 records is ~300 KB).
    async fn apply(&self, ops: &mut Vec<Op>, records: &mut Vec<CallRecord>) {
        records.clear();
        let mut flushes = Vec::new();
        for op in ops.drain(..) {
            match op {
                Op::Write(record) => records.push(*record),
                Op::Flush(done) => flushes.push(done),
            }
        }
        self.write(records).await;
        records.clear();
        for done in flushes {
            let _ = done.send(());
        }
    }

    async fn run(
        self,
        mut queue: mpsc::Receiver<Op>,
        options: CdrOptions,
        (boot_ms, mut recovered): (i64, bool),
    ) {
        let mut retry_tick = tokio::time::interval(options.retry);
        let mut heartbeat_tick = tokio::time::interval(options.heartbeat);
        retry_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ops = Vec::with_capacity(BATCH);
        let mut records = Vec::with_capacity(BATCH);
        loop {
            let wake = tokio::select! {
                received = queue.recv_many(&mut ops, BATCH) => Wake::Queue(received),
                _ = retry_tick.tick() => Wake::Retry,
                _ = heartbeat_tick.tick() => Wake::Heartbeat,
            };
            match wake {
                Wake::Queue(0) => break,
                Wake::Queue(_) => {
                    linger(&mut queue, &mut ops, options.linger).await;
                    self.apply(&mut ops, &mut records).await;
                }
                Wake::Retry => {
                    let drained =
                        self.stats.pending.load(Ordering::Relaxed) == 0 || self.replay().await;
                    if drained && !recovered {
                        // The start could not close interrupted records: do it now.
                        recovered = self.close_interrupted(boot_ms).await;
                    }
                }
                Wake::Heartbeat => {
                    if self.stats.pending.load(Ordering::Relaxed) == 0
                        && let Err(error) = self
                            .store
                            .cdrs()
                            .touch_open(&self.node_id, pbx_api::now_ms())
                            .await
                    {
                        tracing::debug!(%error, "CDR heartbeat failed");
                    }
                }
            }
        }
        if self.stats.pending.load(Ordering::Relaxed) > 0 && !self.replay().await {
            tracing::warn!("CDR journal left for the next start (store unavailable)");
        }
    }
}

/// Lets the batch in `ops` fill for up to `wait`, then takes whatever is queued (up to
/// [`BATCH`] in all). No wait when the batch is full or someone waits on a flush.
async fn linger(queue: &mut mpsc::Receiver<Op>, ops: &mut Vec<Op>, wait: Duration) {
    let flushing = |ops: &[Op]| ops.iter().any(|op| matches!(op, Op::Flush(_)));
    if wait.is_zero() || ops.len() >= BATCH || flushing(ops) {
        return;
    }
    let deadline = tokio::time::Instant::now() + wait;
    while ops.len() < BATCH {
        let before = ops.len();
        match tokio::time::timeout_at(deadline, queue.recv_many(ops, BATCH - before)).await {
            Ok(0) | Err(_) => return,
            Ok(_) if flushing(&ops[before..]) => return,
            Ok(_) => {}
        }
    }
}
