// SPDX-License-Identifier: GPL-2.0

//! The disposition report's records: a module-wide mutex, because the walks that write them
//! and the debugfs file that reads them share nothing else (no per-module data in 7.3 Rust);
//! and the stages where a walk's records wait to go in.

use super::HmemPlatform;
use crate::disposition::{
    Record,
    Records, //
};
use core::ops::{
    Deref,
    DerefMut, //
};
use core::{
    cell::UnsafeCell,
    ptr, //
};
// `global_lock!` names `Pin` unqualified: the prelude has it.
use kernel::{
    bindings,
    prelude::*,
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Relaxed,
            Release, //
        },
        global_lock,
        GlobalGuard, //
    },
};

global_lock! {
    // SAFETY: `RecordsLock::init()` initialises it, once, and every use goes through
    // `lock()`, which checks `READY` first.
    unsafe(uninit) static RECORDS: Mutex<Records> = Records::new();
}

/// Taken by the one `RecordsLock::init()` that initialises `RECORDS`.
static CLAIMED: Atomic<bool> = Atomic::new(false);

/// Set once `RECORDS` is initialised: a use before is refused, not an uninitialised lock.
static READY: Atomic<bool> = Atomic::new(false);

/// The records' lock.
pub(crate) struct RecordsLock;

impl RecordsLock {
    /// Initialise the lock; false if it was already (it is the module's one set of records).
    pub(crate) fn init() -> bool {
        if CLAIMED.cmpxchg(false, true, Relaxed).is_err() {
            return false;
        }
        // SAFETY: Once: only the caller that took `CLAIMED` above gets here, and it is never
        // cleared while the module, whose static this is, lives.
        unsafe { RECORDS.init() };
        READY.store(true, Release);
        true
    }

    /// The records, locked; `None` before `init()`.
    pub(crate) fn lock() -> Option<RecordsGuard> {
        READY.load(Acquire).then(|| RecordsGuard(RECORDS.lock()))
    }
}

/// The records while locked (`RECORDS` itself stays private to this file, so that no use
/// skips the `READY` check).
pub(crate) struct RecordsGuard(GlobalGuard<RECORDS>);

impl Deref for RecordsGuard {
    type Target = Records;

    fn deref(&self) -> &Records {
        &self.0
    }
}

impl DerefMut for RecordsGuard {
    fn deref_mut(&mut self) -> &mut Records {
        &mut self.0
    }
}

/// Walks in progress, each with a stage of its own: a walk's records gather there without the
/// records' mutex, and go in under it at once. Under lockdep, locking it for every range cost
/// more than the walk's own work per range (the 256 of a probe walk). One stage per
/// `hmem_platform` device (device.c's and cxl_test's), and room to spare; a walk that finds
/// none free records under the mutex.
static STAGES: [Stage; 4] = [const { Stage::new() }; 4];

/// A stage's first allocation, in records; each next one is four times as large (64, 256,
/// 1024): under the lab kernel's kmemleak and lockdep, an allocation costs about 40
/// microseconds, a record well under one.
const STAGE_START: usize = 64;

/// One walk's stage.
struct Stage {
    /// The walking `hmem_platform` device, null while free.
    host: Atomic<*mut bindings::device>,
    /// Used only by the thread that holds `host`'s device lock (see `Sync` below).
    lines: UnsafeCell<KVec<Record>>,
}

// SAFETY: `lines` is used only by `with_stage()`, `push_staged()` and `take_staged()`, for a
// stage whose `host` is a device whose lock the calling thread holds (`HmemPlatform`'s
// invariant). A stage holds a device only within `with_stage()`, run by a thread that holds
// that lock throughout: the lock's one holder is the one thread that uses `lines`, and `host`
// is set and cleared inside its critical section. `host` itself is an atomic.
unsafe impl Sync for Stage {}

impl Stage {
    const fn new() -> Self {
        Self {
            host: Atomic::new(ptr::null_mut()),
            lines: UnsafeCell::new(KVec::new()),
        }
    }

    /// The stage of `host`'s walk in progress.
    fn of(host: &HmemPlatform<'_>) -> Option<&'static Stage> {
        let device = host.raw_device();
        STAGES.iter().find(|s| s.host.load(Acquire) == device)
    }

    /// Its records, for the thread that holds its device's lock.
    ///
    /// # Safety
    ///
    /// The stage holds `host` (`Stage::of(host)` or claimed for it), and no other reference
    /// from this function is live.
    #[expect(clippy::mut_from_ref)]
    unsafe fn lines(&self, _host: &HmemPlatform<'_>) -> &mut KVec<Record> {
        // SAFETY: `host`'s lock is held by this thread (`HmemPlatform`'s invariant), and so it
        // is the one thread using this stage (see `Sync` above); the caller has no other
        // reference to it.
        unsafe { &mut *self.lines.get() }
    }
}

/// Run `walk`, a walk of `host`, with a stage for its records; return its result and what it
/// staged and no one took. Nothing is staged when every stage is taken, or when `host`
/// already has one: a walk within its own walk, which cannot happen through
/// `walk_hmem_resources()` (its lock is held across the callbacks), and whose records would
/// go to the outer walk.
pub(crate) fn with_stage<R>(
    host: &HmemPlatform<'_>,
    walk: impl FnOnce() -> R,
) -> (R, KVec<Record>) {
    if Stage::of(host).is_some() {
        return (walk(), KVec::new());
    }
    let device = host.raw_device();
    let claimed = STAGES
        .iter()
        .find(|s| s.host.cmpxchg(ptr::null_mut(), device, Acquire).is_ok());
    let Some(stage) = claimed else {
        return (walk(), KVec::new());
    };
    let result = walk();
    // SAFETY: Claimed for `host` above; `walk` has returned, so `push_staged()` and
    // `take_staged()` hold no reference.
    let lines = core::mem::take(unsafe { stage.lines(host) });
    stage.host.store(ptr::null_mut(), Release);
    (result, lines)
}

/// Add `record` to the stage of `host`'s walk in progress; back, if there is none or no memory.
pub(crate) fn push_staged(host: &HmemPlatform<'_>, record: Record) -> Result<(), Record> {
    let Some(stage) = Stage::of(host) else {
        return Err(record);
    };
    // SAFETY: `Stage::of(host)`; the reference ends with this call, which calls nothing that
    // stages.
    let lines = unsafe { stage.lines(host) };
    // Room for the ranges of most hosts at once, then for four times as many.
    let more = lines.len().saturating_mul(3).max(STAGE_START);
    if lines.len() == lines.capacity() && lines.reserve(more, GFP_KERNEL).is_err() {
        return Err(record);
    }
    lines.push(record, GFP_KERNEL).map_err(|_| record)
}

/// Take what `host`'s walk in progress has staged so far; nothing when it has no stage.
pub(crate) fn take_staged(host: &HmemPlatform<'_>) -> KVec<Record> {
    match Stage::of(host) {
        // SAFETY: `Stage::of(host)`; the reference ends with the `take()`.
        Some(stage) => core::mem::take(unsafe { stage.lines(host) }),
        None => KVec::new(),
    }
}
