// SPDX-License-Identifier: GPL-2.0

//! What dax_hmem decided for each Soft Reserved range, and why: the disposition report,
//! `/sys/kernel/debug/dax_hmem/disposition`, one line per range (or piece, with `split=1`):
//!
//! ```text
//! # host range decision reason owner
//! hmem_platform.0 [mem 0x0000000390000000-0x000000039fffffff] hmem not-in-cxl-window hmem.3
//! hmem_platform.0 [mem 0x00000003a0000000-0x00000003afffffff] cxl contained-by-region0 region0
//! ```
//!
//! It only reports: the decisions are 7.3's (or the parameters'), with or without it. The
//! records of a host are replaced at each of its probes and dropped when it unbinds.

use crate::{
    ffi::{
        self,
        HmemPlatform,
        RecordsLock, //
    },
    policy::Span,
};
use core::fmt::{
    self,
    Display,
    Formatter, //
};
use kernel::{
    debugfs::{
        Dir,
        File, //
    },
    prelude::*,
};

/// Why an hmem device owns a range.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum HmemReason {
    /// Outside every CXL window (at probe, or a piece of a split range).
    NotInCxlWindow,
    /// dax_cxl is not configured (no CONFIG_DEV_DAX_CXL): hmem registers every range.
    NoCxlDeferral,
    /// In a CXL window, but no committed region contains it.
    NotContained,
}

/// Why a range was left alone.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum SkipReason {
    /// No longer Soft Reserved in iomem (hmem.c's `region_intersects_soft_reserve()` check).
    NotSoftReserved,
    /// The deferred walk stopped at an earlier range's failure, as hmem.c's does.
    WalkStopped,
}

/// The decision for one range, with its reason and owner.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// CXL memory waiting for the deferred walk.
    Pending,
    /// `hmem.<device>` owns it.
    Hmem {
        reason: HmemReason,
        device: c_int,
    },
    /// A committed CXL region contains it: `region<id>`, when its dax region is on the CXL bus.
    Cxl {
        region: Option<c_int>,
    },
    /// A reload left it to CXL without a check (7.3's `reload=defer`).
    LeftToCxl,
    /// hmem's, but registering it failed with this errno.
    Failed {
        errno: c_int,
    },
    Skipped(SkipReason),
}

impl Disposition {
    /// The report's decision column.
    fn decision(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Hmem { .. } | Self::Failed { .. } => "hmem",
            Self::Cxl { .. } => "cxl",
            Self::LeftToCxl => "left-to-cxl",
            Self::Skipped(_) => "skipped",
        }
    }
}

impl Display for Disposition {
    /// The decision, reason and owner columns.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let decision = self.decision();
        match *self {
            Self::Pending => write!(f, "{decision} await-cxl-probe -"),
            Self::Hmem { reason, device } => {
                let reason = match reason {
                    HmemReason::NotInCxlWindow => "not-in-cxl-window",
                    HmemReason::NoCxlDeferral => "dax-cxl-not-configured",
                    HmemReason::NotContained => "not-contained",
                };
                write!(f, "{decision} {reason} hmem.{device}")
            }
            Self::Cxl { region: Some(id) } => {
                write!(f, "{decision} contained-by-region{id} region{id}")
            }
            Self::Cxl { region: None } => write!(f, "{decision} contained-by-committed-region -"),
            Self::LeftToCxl => write!(f, "{decision} reload -"),
            Self::Failed { errno } => write!(f, "{decision} failed:{errno} -"),
            Self::Skipped(reason) => {
                let reason = match reason {
                    SkipReason::NotSoftReserved => "not-soft-reserved",
                    SkipReason::WalkStopped => "walk-stopped",
                };
                write!(f, "{decision} {reason} -")
            }
        }
    }
}

/// One line of the report. `host` is the `hmem_platform` device's id.
#[derive(Clone, Copy)]
pub(crate) struct Record {
    host: c_int,
    span: Span,
    disposition: Disposition,
}

impl Record {
    /// Whether it lies wholly before `other` in the records' order: by host, then address.
    fn before(&self, other: &Record) -> bool {
        (self.host, self.span.end) < (other.host, other.span.start)
    }
}

impl Display for Record {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        // The range as "%pr" prints it, without the flags.
        writeln!(
            f,
            "hmem_platform.{} [mem {:#018x}-{:#018x}] {}",
            self.host, self.span.start, self.span.end, self.disposition
        )
    }
}

/// The records, in (host, address) order, and whether one could not be kept. One host's
/// records never overlap: `Records::record()` keeps it so, and finds its place by it.
pub(crate) struct Records {
    lines: KVec<Record>,
    incomplete: bool,
}

impl Records {
    pub(crate) const fn new() -> Self {
        Self {
            lines: KVec::new(),
            incomplete: false,
        }
    }

    /// Insert `record` at `at`, which the caller chose to keep the order; false when out of
    /// memory.
    fn insert(&mut self, at: usize, record: Record) -> bool {
        if self.lines.reserve(1, GFP_KERNEL).is_err() {
            self.incomplete = true;
            return false;
        }
        // Cannot fail: a slot is reserved, and `at` is at most the length.
        self.lines.insert_within_capacity(at, record).is_ok()
    }

    /// Whether `lines` are in order and apart, as the records' lines must be.
    fn in_order(lines: &[Record]) -> bool {
        lines.windows(2).all(|w| w[0].before(&w[1]))
    }

    /// Add `new`, cutting what it overlaps back to the rest. A host's records never overlap
    /// and are in address order, so those `new` overlaps lie together, from the first that
    /// ends at or after its start: found by a binary search, as a walk records its ranges in
    /// address order and 256 of them must not cost a scan each. Out of memory, the new
    /// decision goes in before the rest of a record it cuts: the report then lacks the rest.
    fn record(&mut self, new: Record) -> bool {
        let mut at = self.lines.partition_point(|r| r.before(&new));
        let mut kept = true;
        let mut after = None;
        while let Some(&old) = self.lines.get(at) {
            if old.host != new.host || !old.span.intersects(&new.span) {
                break;
            }
            // Cannot fail: `at` is in bounds.
            if self.lines.remove(at).is_err() {
                break;
            }
            if old.span.start < new.span.start {
                let span = Span {
                    start: old.span.start,
                    end: new.span.start - 1,
                };
                let inserted = self.insert(at, Record { span, ..old });
                at += usize::from(inserted);
                kept &= inserted;
            }
            if old.span.end > new.span.end {
                // The last one `new` overlaps: every later record starts after it ends.
                let span = Span {
                    start: new.span.end + 1,
                    end: old.span.end,
                };
                after = Some(Record { span, ..old });
                break;
            }
        }
        let inserted = self.insert(at, new);
        if let Some(after) = after {
            kept &= self.insert(at + usize::from(inserted), after);
        }
        kept && inserted
    }
}

/// Start a decision round of `host` (its probe): forget its earlier records.
pub(crate) fn begin_round(host: c_int) {
    forget(host);
}

/// Forget `host`'s records: it unbound, or its probe failed, and no device of it is left.
pub(crate) fn forget(host: c_int) {
    if let Some(mut records) = RecordsLock::lock() {
        records.lines.retain(|r| r.host != host);
    }
}

/// Run `walk`, a walk of `host`'s ranges, with its records staged (`ffi::with_stage()`), and
/// put them in the records at its end; return its result, and how many records could not be
/// kept for lack of memory.
pub(crate) fn walk_staged<R>(host: &HmemPlatform<'_>, walk: impl FnOnce() -> R) -> (R, usize) {
    let (result, staged) = ffi::with_stage(host, walk);
    (result, merge(host.id(), staged))
}

/// Put what `host`'s walk in progress has staged in the records now, before a step that may
/// take long (registering a device): until then, readers (debugfs, the deferral watchdog)
/// would not see them. Returns how many could not be kept.
pub(crate) fn flush_staged(host: &HmemPlatform<'_>) -> usize {
    merge(host.id(), ffi::take_staged(host))
}

/// Put `host`'s staged records in the records, in their order; how many could not be kept.
fn merge(host: c_int, staged: KVec<Record>) -> usize {
    let mut lost = 0;
    if !staged.is_empty() {
        if let Some(mut records) = RecordsLock::lock() {
            // Into an empty report (a usual boot: one host, its probe), the walk's records, in
            // address order and apart, go as they are, without an allocation or a copy: all
            // of a probe walk whose ranges await CXL, or what a walk staged before its first
            // registration. The report keeps the stage's spare room (it grows fourfold).
            if records.lines.is_empty() && Records::in_order(&staged) {
                records.lines = staged;
                return 0;
            }
            // Room for them in one allocation, as each costs more than a record: about what
            // the walk staged beyond the lines its host has (the deferred walk's replace the
            // probe's pending ones). Short of memory, `record()` tries one by one.
            let present = records.lines.iter().filter(|r| r.host == host).count();
            let _ = records
                .lines
                .reserve(staged.len().saturating_sub(present), GFP_KERNEL);
            for record in staged {
                lost += usize::from(!records.record(record));
            }
        }
    }
    lost
}

/// Record the disposition of `span` (a range, or a piece of one) of `host`. What it
/// overlaps is cut back to the rest: deciding a range's first piece leaves the rest pending,
/// so that a walk stopped by a failure still reports every byte. Within [`walk_staged`], it
/// is staged. Returns how many records were lost for lack of memory (the report then says it
/// is incomplete).
pub(crate) fn record(host: &HmemPlatform<'_>, span: Span, disposition: Disposition) -> usize {
    let record = Record {
        host: host.id(),
        span,
        disposition,
    };
    let Err(record) = ffi::push_staged(host, record) else {
        return 0;
    };
    // Not staged: after what was, so that the records keep the walk's order.
    let lost = flush_staged(host);
    let Some(mut records) = RecordsLock::lock() else {
        return lost;
    };
    lost + usize::from(!records.record(record))
}

/// Turn `host`'s records in `from` into `to` (the ranges a failed walk never reached).
pub(crate) fn replace_all(host: c_int, from: impl Fn(&Disposition) -> bool, to: Disposition) {
    if let Some(mut records) = RecordsLock::lock() {
        for r in records.lines.iter_mut().filter(|r| r.host == host) {
            if from(&r.disposition) {
                r.disposition = to;
            }
        }
    }
}

/// How many of `host`'s ranges went where, for the `summary` line.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) hmem: usize,
    pub(crate) cxl: usize,
    pub(crate) left_to_cxl: usize,
    pub(crate) pending: usize,
    pub(crate) skipped: usize,
    pub(crate) failed: usize,
}

pub(crate) fn tally(host: c_int) -> Tally {
    let mut tally = Tally::default();
    if let Some(records) = RecordsLock::lock() {
        for r in records.lines.iter().filter(|r| r.host == host) {
            let count = match r.disposition {
                Disposition::Pending => &mut tally.pending,
                Disposition::Hmem { .. } => &mut tally.hmem,
                Disposition::Cxl { .. } => &mut tally.cxl,
                Disposition::LeftToCxl => &mut tally.left_to_cxl,
                Disposition::Failed { .. } => &mut tally.failed,
                Disposition::Skipped(_) => &mut tally.skipped,
            };
            *count += 1;
        }
    }
    tally
}

/// `host`'s pending ranges, copied out of the records (printk formats with interrupts off,
/// where their mutex cannot be taken), for the watchdog: "[mem a-b], [mem c-d]".
pub(crate) struct PendingRanges {
    spans: [Span; Self::SHOWN],
    count: usize,
}

impl PendingRanges {
    /// At most this many are named; the rest are counted.
    const SHOWN: usize = 4;

    pub(crate) fn of(host: c_int) -> Self {
        let mut pending = Self {
            spans: [Span { start: 0, end: 0 }; Self::SHOWN],
            count: 0,
        };
        if let Some(records) = RecordsLock::lock() {
            let spans = records
                .lines
                .iter()
                .filter(|r| r.host == host && r.disposition == Disposition::Pending)
                .map(|r| r.span);
            for span in spans {
                if let Some(slot) = pending.spans.get_mut(pending.count) {
                    *slot = span;
                }
                pending.count += 1;
            }
        }
        pending
    }
}

// The kernel's `Display`, which its printing macros take.
impl kernel::fmt::Display for PendingRanges {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.count == 0 {
            return write!(f, "none");
        }
        for (i, span) in self.spans.iter().take(self.count).enumerate() {
            let separator = if i > 0 { ", " } else { "" };
            write!(
                f,
                "{separator}[mem {:#018x}-{:#018x}]",
                span.start, span.end
            )?;
        }
        match self.count.checked_sub(Self::SHOWN) {
            Some(more) if more > 0 => write!(f, " and {more} more"),
            _ => Ok(()),
        }
    }
}

/// The report file; its contents are the records'.
struct ReportFile;

fn write_report(_: &ReportFile, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "# host range decision reason owner")?;
    let Some(records) = RecordsLock::lock() else {
        return Ok(());
    };
    if records.incomplete {
        writeln!(f, "# incomplete: a record was lost for lack of memory")?;
    }
    records.lines.iter().try_for_each(|r| write!(f, "{r}"))
}

/// The report: owns the records and the debugfs file. Dropped at module exit, after the
/// drivers, so no walk records any more.
pub(crate) struct DispositionReport {
    _file: Option<Pin<KBox<File<ReportFile>>>>,
}

impl DispositionReport {
    /// Initialise the records and create `dax_hmem/disposition` in debugfs. A second report
    /// while one exists is refused (`EBUSY`): the records are the module's one set. Out of
    /// memory for the file, the module goes on without it, as hmem.c has none.
    pub(crate) fn new() -> Result<Self> {
        if !RecordsLock::init() {
            return Err(EBUSY);
        }
        // debugfs failures are not errors (the kernel crate's `Dir` stays empty then).
        let dir = Dir::new(c"dax_hmem");
        let file = KBox::pin_init(
            dir.read_callback_file(c"disposition", ReportFile, &write_report),
            GFP_KERNEL,
        )
        .inspect_err(|_| pr_err!("no disposition report: out of memory\n"))
        .ok();
        Ok(Self { _file: file })
    }
}

impl Drop for DispositionReport {
    fn drop(&mut self) {
        // Free the records' memory: a static is never dropped.
        if let Some(mut records) = RecordsLock::lock() {
            records.lines = KVec::new();
        }
    }
}
