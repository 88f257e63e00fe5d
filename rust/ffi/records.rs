// SPDX-License-Identifier: GPL-2.0

//! The disposition report's records: a module-wide mutex, because the walks that write them
//! and the debugfs file that reads them share nothing else (no per-module data in 7.3 Rust).

use crate::disposition::Records;
// `global_lock!` names `Pin` unqualified.
use core::ops::{
    Deref,
    DerefMut, //
};
use kernel::prelude::Pin;
use kernel::sync::{
    atomic::{
        Acquire,
        Atomic,
        Relaxed,
        Release, //
    },
    global_lock, GlobalGuard,
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
