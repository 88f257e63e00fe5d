// SPDX-License-Identifier: GPL-2.0

//! The stuck-deferral watchdog (`deferral_timeout`): while the deferred walk waits in
//! `wait_for_device_probe()`, a delayed work on the system queue warns that it still waits,
//! after the timeout and then at doubling intervals. The kernel crate's delayed work cannot
//! be cancelled, and this one must be before the walk returns, so it is a raw `delayed_work`.

use crate::disposition::PendingRanges;
use kernel::{
    bindings, device,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{
            Atomic,
            Relaxed, //
        },
    },
    time::msecs_to_jiffies,
    types::Opaque,
};

/// The watchdog's state: a delayed work and what its warning names.
#[pin_data]
struct Watchdog {
    #[pin]
    dwork: Opaque<bindings::delayed_work>,
    /// The `hmem_platform` device whose walk waits, for the warning's prefix.
    host: ARef<device::Device>,
    /// Its id, to find its pending ranges in the disposition report.
    host_id: c_int,
    /// Seconds from the start of the wait to the next warning.
    next_warning: Atomic<u32>,
}

/// The longest interval between two warnings, in seconds: the backoff stops doubling there.
const MAX_INTERVAL: u32 = 3600;

/// The stuck-deferral watchdog. There is no value to hold: [`Self::watch`] cancels it before
/// it returns, so no warning can run once the deferred walk (and with it the module) is gone.
pub(crate) struct DeferralWatchdog;

impl DeferralWatchdog {
    /// Run `wait`, warning after `timeout` seconds (at most [`MAX_INTERVAL`]) if it has not
    /// returned, then at doubling intervals. Out of memory for the watchdog, `wait` runs
    /// without one, and the error is returned with its result.
    pub(crate) fn watch<R>(
        host: &device::Device,
        host_id: c_int,
        timeout: u32,
        wait: impl FnOnce() -> R,
    ) -> (R, Result) {
        let timeout = timeout.clamp(1, MAX_INTERVAL);
        let watchdog = KBox::pin_init(
            pin_init!(Watchdog {
                dwork <- Opaque::ffi_init(|slot: *mut bindings::delayed_work| {
                    // SAFETY: `slot` is valid, uninitialised storage for a `delayed_work` that
                    // stays pinned; this is INIT_DELAYED_WORK() with `warn_pending`, as the
                    // kernel crate's `DelayedWork::new()` does it.
                    unsafe {
                        bindings::init_work_with_key(
                            &raw mut (*slot).work,
                            Some(warn_pending),
                            false,
                            c"dax_hmem_watchdog".as_char_ptr(),
                            kernel::static_lock_class!().as_ptr(),
                        );
                        bindings::timer_init_key(
                            &raw mut (*slot).timer,
                            Some(bindings::delayed_work_timer_fn),
                            bindings::TIMER_IRQSAFE,
                            c"dax_hmem_watchdog_timer".as_char_ptr(),
                            kernel::static_lock_class!().as_ptr(),
                        );
                    }
                }),
                host: host.into(),
                host_id,
                next_warning: Atomic::new(timeout),
            }),
            GFP_KERNEL,
        );
        let watchdog = match watchdog {
            Ok(watchdog) => watchdog,
            Err(err) => return (wait(), Err(err)),
        };
        watchdog.queue_after(timeout);
        let result = wait();
        // SAFETY: `dwork` is initialised. cancel_delayed_work_sync() also stops a warning that
        // is queueing itself again, and returns once none runs; after it, nothing refers to
        // the watchdog, which is freed below.
        unsafe { bindings::cancel_delayed_work_sync(watchdog.dwork.get()) };
        drop(watchdog);
        (result, Ok(()))
    }
}

impl Watchdog {
    /// Queue the warning `seconds` from now on the system's default unbound queue.
    fn queue_after(&self, seconds: u32) {
        let delay = msecs_to_jiffies(seconds.saturating_mul(1000));
        // SAFETY: `dwork` is initialised and pinned, and `watch()` cancels it before freeing
        // it. Reading the `system_dfl_wq` pointer, set at boot, copies it.
        unsafe {
            bindings::queue_delayed_work_on(
                bindings::wq_misc_consts_WORK_CPU_UNBOUND as c_int,
                bindings::system_dfl_wq,
                self.dwork.get(),
                delay,
            )
        };
    }
}

/// The `dwork` function: warn, then queue the next warning, the interval doubled up to
/// [`MAX_INTERVAL`].
///
/// # Safety
///
/// Only as the work function of a [`Watchdog`]'s `dwork`.
unsafe extern "C" fn warn_pending(work: *mut bindings::work_struct) {
    // SAFETY: `work` is the `work` of a `delayed_work`, by the safety requirements.
    let dwork = unsafe { kernel::container_of!(work, bindings::delayed_work, work) };
    // CAST: `Opaque<T>` is `#[repr(transparent)]` over `T`.
    let dwork = dwork.cast::<Opaque<bindings::delayed_work>>();
    // SAFETY: That `delayed_work` is the `dwork` of a `Watchdog`, which `watch()` keeps
    // alive until it has cancelled the work and waited for this function to return.
    let watchdog = unsafe { &*kernel::container_of!(dwork, Watchdog, dwork) };

    let waited = watchdog.next_warning.load(Relaxed);
    dev_warn!(
        &*watchdog.host,
        "CXL deferral still undecided after {} s, waiting in wait_for_device_probe() for a probe that has not finished; pending: {}; a dax_cxl driver registration waits behind it\n",
        waited,
        PendingRanges::of(watchdog.host_id)
    );
    let interval = waited.min(MAX_INTERVAL);
    watchdog
        .next_warning
        .store(waited.saturating_add(interval), Relaxed);
    watchdog.queue_after(interval);
}
