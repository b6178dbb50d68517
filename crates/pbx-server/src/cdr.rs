//! Durable call detail records: the [`CdrSink`] the call engine reports calls to.
//!
//! # Contract for the call engine
//!
//! - [`CdrSink`] is a cheap `Clone` handle; its methods never block and never fail, so they
//!   are called straight from synchronous SIP callbacks on the driver task.
//! - [`CdrSink::call_started`] with the open record ([`CallRecord::open`]) as soon as the call
//!   is admitted: the record is written *open* at once, so a crash mid-call leaves a row that
//!   the next start closes as `interrupted` at the last time the call was known alive.
//! - [`CdrSink::call_updated`] after [`CallRecord::rang`] / [`CallRecord::answered`].
//! - [`CdrSink::call_ended`] with the record after [`CallRecord::close`] (the final record,
//!   media statistics included). A closed record is final: later writes of the same id are
//!   ignored.
//!
//! # Durability
//!
//! A background task (started by [`CdrSink::start`]) writes to the store. When a write fails
//! because the store is down, the record is appended to an fsync'd JSON-lines journal in
//! the data directory (`cdr-journal.jsonl`), and from then on records go to the journal
//! (keeping their order) until a replay into the store succeeds; the task retries every
//! `retry` interval. If the task's queue is full, the caller appends to the journal itself.
//! So a database error never loses a CDR. A record the database refuses for good (a
//! constraint) is moved to `cdr-rejected.jsonl` for an operator to look at, never dropped.
//!
//! At start, the journal is replayed first, then every record this node left open before
//! the start is closed as `interrupted` ([`pbx_store::Cdrs::close_interrupted`]). While calls
//! run, the task marks open records alive every `heartbeat`, which bounds the error of an
//! interrupted call's end time.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pbx_domain::CallRecord;
use pbx_store::{Store, StoreError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The journal file name in the data directory.
pub const JOURNAL_FILE: &str = "cdr-journal.jsonl";
/// Records the database refused for good.
pub const REJECTED_FILE: &str = "cdr-rejected.jsonl";

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
}

impl CdrOptions {
    /// Defaults for `node_id`: queue 65,536, retry 2 s, heartbeat 15 s.
    pub fn new(node_id: impl Into<String>) -> Self {
        Self {
            node_id: node_id.into(),
            queue: 65_536,
            retry: Duration::from_secs(2),
            heartbeat: Duration::from_secs(15),
        }
    }
}

/// Counters of the CDR path (for metrics and tests).
#[derive(Debug, Default)]
pub struct CdrStats {
    /// Records written to the store directly.
    pub stored: AtomicU64,
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
        let task = tokio::spawn(writer.run(
            receiver,
            options.retry,
            options.heartbeat,
            (boot_ms, recovered),
        ));
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

    /// The call was admitted: write its open record now.
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
    /// the journal). For tests and shutdown.
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
                match journal.append(&record) {
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

    fn append_to(path: &Path, record: &CallRecord) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        file.write_all(&line)?;
        file.sync_data()
    }

    fn append(&self, record: &CallRecord) -> std::io::Result<()> {
        Self::append_to(&self.path, record)
    }

    fn reject(&self, record: &CallRecord) -> std::io::Result<()> {
        Self::append_to(&self.rejected, record)
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

    /// Replays the journal into the store; true when it is empty afterwards.
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
        for record in &records {
            if let Outcome::Down = self.store_one(record).await {
                return false;
            }
        }
        // Records appended meanwhile by an overloaded caller must not be lost with the file.
        let journal = self.lock();
        let now_there = journal.read_all().unwrap_or_default();
        let extra: Vec<&CallRecord> = now_there.iter().skip(records.len()).collect();
        if !extra.is_empty() {
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

    async fn write(&self, record: &CallRecord) {
        if self.stats.pending.load(Ordering::Relaxed) == 0 {
            match self.store_one(record).await {
                Outcome::Stored => {
                    self.stats.stored.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Outcome::Rejected => return,
                Outcome::Down => {}
            }
        }
        match self.lock().append(record) {
            Ok(()) => {
                self.stats.journaled.fetch_add(1, Ordering::Relaxed);
                self.stats.pending.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                tracing::error!(%error, record = ?record, "CDR could not be journaled");
            }
        }
    }

    async fn run(
        self,
        mut queue: mpsc::Receiver<Op>,
        retry: Duration,
        heartbeat: Duration,
        (boot_ms, mut recovered): (i64, bool),
    ) {
        let mut retry_tick = tokio::time::interval(retry);
        let mut heartbeat_tick = tokio::time::interval(heartbeat);
        retry_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                op = queue.recv() => match op {
                    Some(Op::Write(record)) => self.write(&record).await,
                    Some(Op::Flush(done)) => {
                        let _ = done.send(());
                    }
                    None => break,
                },
                _ = retry_tick.tick() => {
                    let drained = self.stats.pending.load(Ordering::Relaxed) == 0 || self.replay().await;
                    if drained && !recovered {
                        // The start could not close interrupted records: do it now.
                        recovered = self.close_interrupted(boot_ms).await;
                    }
                }
                _ = heartbeat_tick.tick() => {
                    if self.stats.pending.load(Ordering::Relaxed) == 0
                        && let Err(error) = self.store.cdrs().touch_open(&self.node_id, pbx_api::now_ms()).await
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
