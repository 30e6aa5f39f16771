//! The progress bar of `loader load`: objects done of those known, records, documents and
//! documents per second. Drawn only when stderr is a terminal; a redirected run stays quiet
//! (its logs remain the tracing lines).

use crate::deliver::DocumentSink;
use crate::sink::{BulkItem, WriteOutcome};
use futures::future::BoxFuture;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counters shared by the tasks of a run; the bar (when shown) reads them.
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    records: AtomicU64,
    documents: AtomicU64,
    failed: AtomicU64,
    /// The source is still being listed: the total is not known yet.
    listing: AtomicBool,
}

impl Progress {
    /// A bar on stderr when it is a terminal, else a hidden one.
    pub fn new() -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self::with_target(target)
    }

    /// A bar that draws nowhere (tests, library callers).
    pub fn hidden() -> Self {
        Self::with_target(ProgressDrawTarget::hidden())
    }

    fn with_target(target: ProgressDrawTarget) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), target);
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} objects {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(250));
        Self {
            bar,
            started: Instant::now(),
            records: AtomicU64::new(0),
            documents: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            listing: AtomicBool::new(true),
        }
    }

    /// More objects are known (listed, read from the list, received from the queue).
    pub fn discovered(&self, n: u64) {
        self.bar.inc_length(n);
    }

    /// Every object is known: the total is final.
    pub fn listing_done(&self) {
        self.listing.store(false, Ordering::Relaxed);
        self.redraw();
    }

    /// Documents handed to the sink (counted as they go, so a large object shows progress).
    pub fn documents_sent(&self, n: u64) {
        self.documents.fetch_add(n, Ordering::Relaxed);
        self.redraw();
    }

    /// One object is done.
    pub fn object_done(&self, records: u64, failed: bool) {
        self.records.fetch_add(records, Ordering::Relaxed);
        if failed {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.bar.inc(1);
        self.redraw();
    }

    pub fn documents(&self) -> u64 {
        self.documents.load(Ordering::Relaxed)
    }

    pub fn done(&self) -> u64 {
        self.bar.position()
    }

    /// Runs `f` with the bar cleared (for lines printed while it is shown).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Removes the bar before the summary is printed.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn redraw(&self) {
        let records = self.records.load(Ordering::Relaxed);
        let documents = self.documents.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        let listing = self.listing.load(Ordering::Relaxed);
        self.bar.set_message(message(
            records,
            documents,
            failed,
            self.started.elapsed(),
            listing,
        ));
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

/// A sink that counts the documents going through it for the bar.
pub struct CountingSink {
    pub inner: Arc<dyn DocumentSink>,
    pub progress: Arc<Progress>,
}

impl DocumentSink for CountingSink {
    fn write(&self, items: Vec<BulkItem>) -> BoxFuture<'_, WriteOutcome> {
        self.progress.documents_sent(items.len() as u64);
        self.inner.write(items)
    }

    fn commit(&self) -> BoxFuture<'_, Result<(), String>> {
        self.inner.commit()
    }

    fn commits(&self) -> bool {
        self.inner.commits()
    }
}

/// The text after the bar: `(listing) records R, documents D (X/s), failed F`.
pub fn message(
    records: u64,
    documents: u64,
    failed: u64,
    elapsed: Duration,
    listing: bool,
) -> String {
    let rate = documents as f64 / elapsed.as_secs_f64().max(1e-3);
    let mut s = String::new();
    if listing {
        s.push_str("(listing) ");
    }
    s.push_str(&format!(
        "records {records}, documents {documents} ({rate:.0}/s)"
    ));
    if failed > 0 {
        s.push_str(&format!(", failed {failed}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_shows_counts_rate_and_failures() {
        assert_eq!(
            message(10, 8, 0, Duration::from_secs(2), false),
            "records 10, documents 8 (4/s)"
        );
        assert_eq!(
            message(10, 8, 1, Duration::from_secs(4), true),
            "(listing) records 10, documents 8 (2/s), failed 1"
        );
    }

    #[test]
    fn counters_add_up() {
        let p = Progress::hidden();
        p.discovered(3);
        p.documents_sent(4);
        p.object_done(5, false);
        p.object_done(2, true);
        p.listing_done();
        assert_eq!(p.done(), 2);
        assert_eq!(p.documents(), 4);
        assert_eq!(p.failed.load(Ordering::Relaxed), 1);
        p.finish();
    }
}
