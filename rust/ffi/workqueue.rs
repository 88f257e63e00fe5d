// SPDX-License-Identifier: GPL-2.0

//! "dax_hmem_wq", the module's ordered workqueue.

use core::ptr;
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
/// This value owns the published queue; dropping it destroys the queue, which drains it first.
pub(crate) struct DaxHmemWorkqueue(());

static DAX_HMEM_WQ: Atomic<*mut bindings::workqueue_struct> = Atomic::new(ptr::null_mut());

impl DaxHmemWorkqueue {
    /// `alloc_ordered_workqueue("dax_hmem_wq", 0)`, published for [`Self::flush`] and the
    /// deferred walks. There is one owner: while a queue is published, another `alloc()`
    /// fails with `EBUSY`, so no second owner can destroy it.
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
        if wq.is_null() {
            return Err(ENOMEM);
        }
        if DAX_HMEM_WQ.cmpxchg(ptr::null_mut(), wq, Release).is_err() {
            // SAFETY: Just allocated, never published: nothing was queued on it.
            unsafe { bindings::destroy_workqueue(wq) };
            return Err(EBUSY);
        }
        Ok(Self(()))
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
        let wq = DAX_HMEM_WQ.xchg(ptr::null_mut(), Relaxed);
        // SAFETY: `alloc()` published `wq` for this value, the one owner (a second `alloc()`
        // fails while it is published), and only this unpublishes it.
        unsafe { bindings::destroy_workqueue(wq) };
    }
}
