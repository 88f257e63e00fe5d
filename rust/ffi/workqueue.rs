// SPDX-License-Identifier: GPL-2.0

//! "dax_hmem_wq", the module's ordered workqueue.

use core::ptr::{
    self,
    NonNull, //
};
use kernel::{
    bindings,
    prelude::*,
    sync::atomic::{
        Acquire,
        Atomic,
        Relaxed,
        Release, //
    },
};

/// The module's ordered workqueue, "dax_hmem_wq", on which the deferred walks run.
///
/// It is published in [`DAX_HMEM_WQ`] because the queueing probe and the exported
/// `dax_hmem_flush_work()` have no other way to reach it (no per-module data in 7.3 Rust).
/// Dropping it destroys the queue, which drains it first.
pub(crate) struct DaxHmemWorkqueue(NonNull<bindings::workqueue_struct>);

static DAX_HMEM_WQ: Atomic<*mut bindings::workqueue_struct> = Atomic::new(ptr::null_mut());

// SAFETY: A workqueue may be used and destroyed from any thread.
unsafe impl Send for DaxHmemWorkqueue {}
// SAFETY: `&DaxHmemWorkqueue` gives no access at all.
unsafe impl Sync for DaxHmemWorkqueue {}

impl DaxHmemWorkqueue {
    /// `alloc_ordered_workqueue("dax_hmem_wq", 0)`, published for [`Self::flush`] and the
    /// deferred walks. The module makes one.
    pub(crate) fn alloc() -> Result<Self> {
        // SAFETY: The name is a C string without format specifiers; `max_active` 1 with
        // `__WQ_ORDERED` is what alloc_ordered_workqueue() passes.
        let wq = unsafe {
            bindings::alloc_workqueue_noprof(
                c"dax_hmem_wq".as_char_ptr(),
                bindings::wq_flags_WQ_UNBOUND | bindings::wq_flags___WQ_ORDERED,
                1,
            )
        };
        let wq = NonNull::new(wq).ok_or(ENOMEM)?;
        DAX_HMEM_WQ.store(wq.as_ptr(), Release);
        Ok(Self(wq))
    }

    /// `queue_work(dax_hmem_wq, work)`: false if `work` was already queued.
    ///
    /// # Safety
    ///
    /// `work` is a live, initialised work item that stays live until it has run. Only while the
    /// module's queue exists (for probes: while its drivers are registered).
    pub(super) unsafe fn queue_work(work: *mut bindings::work_struct) -> bool {
        let wq = DAX_HMEM_WQ.load(Acquire);
        // SAFETY: `wq` is the module's live queue, `work` live, by the safety requirements.
        unsafe {
            bindings::queue_work_on(bindings::wq_misc_consts_WORK_CPU_UNBOUND as c_int, wq, work)
        }
    }

    /// `flush_workqueue(dax_hmem_wq)`: wait for queued deferred walks to finish.
    pub(crate) fn flush() {
        let wq = DAX_HMEM_WQ.load(Acquire);
        if !wq.is_null() {
            // SAFETY: A published queue is live until `drop` unpublishes it, and `drop` runs at
            // module exit, after which no one can call into the module.
            unsafe { bindings::__flush_workqueue(wq) };
        }
    }
}

impl Drop for DaxHmemWorkqueue {
    fn drop(&mut self) {
        DAX_HMEM_WQ.store(ptr::null_mut(), Relaxed);
        // SAFETY: `self.0` came from alloc_workqueue() and is destroyed once, here.
        unsafe { bindings::destroy_workqueue(self.0.as_ptr()) };
    }
}
