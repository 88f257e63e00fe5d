// SPDX-License-Identifier: GPL-2.0

//! The "hmem_platform" driver: one device stands for all Soft Reserved ranges. Its probe
//! creates an "hmem" device for each range outside CXL windows, and queues one walk that
//! decides the CXL ranges after CXL's initial probe (hmem.c's `hmem_register_device()` and
//! `process_defer_work()`).

use crate::{
    disposition::{
        self,
        Disposition,
        HmemReason,
        SkipReason, //
    },
    ffi::{
        self,
        AllocationFailure,
        CxlSettle,
        DecisionLog,
        DeferralWatchdog,
        HmemPlatform,
        HmemRange,
        MemregionId,
        NewPlatformDevice,
        QueuedHmemPlatform,
        RangeVisitor,
        HMEM, //
    },
    policy::{
        self,
        AfterCxlProbe,
        AtProbe, //
    },
};
use kernel::{
    device::{
        self,
        Core, //
    },
    devres, platform,
    prelude::*,
    time::{
        delay::fsleep,
        Delta,
        Instant,
        Monotonic, //
    },
};

/// The driver. Its data while bound is itself, zero-sized: hmem.c's probe allocates nothing,
/// and neither does the kernel crate's box of a zero-sized type.
pub(crate) struct HmemPlatformDriver;

impl platform::Driver for HmemPlatformDriver {
    type IdInfo = ();
    type Data<'bound> = Self;

    fn probe<'bound>(
        pdev: &'bound platform::Device<Core<'_>>,
        _id_info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self, Error> + 'bound {
        let host = HmemPlatform::from_core(pdev).inspect_err(|_| {
            dev_err!(
                pdev.as_ref(),
                "not an hmem_platform device, refusing to bind\n"
            );
        })?;

        // The queue is only flushed on module unload: fail a rebind while work is pending.
        if host.work_pending() {
            return Err(EBUSY);
        }

        disposition::begin_round(host.id());
        // A failed probe leaves nothing: devres removes its hmem devices, as after an unbind.
        walk::<RegisterAtProbe>(&host).inspect_err(|_| disposition::forget(host.id()))?;
        summarise(host.device(), host.id(), "probe");
        Ok(Self)
    }

    fn unbind<'bound>(pdev: &'bound platform::Device<Core<'_>>, _this: Pin<&Self>) {
        // Its hmem devices go with it (devres, after this), and a rebind decides anew. Only an
        // "hmem_platform" device was bound.
        if let Ok(host) = HmemPlatform::from_core(pdev) {
            disposition::forget(host.id());
        }
    }
}

/// The probe's walk.
struct RegisterAtProbe;

impl RangeVisitor for RegisterAtProbe {
    fn visit(host: &HmemPlatform<'_>, target_nid: c_int, range: &HmemRange) -> Result {
        let in_cxl_window = cfg!(CONFIG_DEV_DAX_CXL) && range.intersects_cxl_window();

        match policy::at_probe(in_cxl_window, host.did_probe(), ffi::reload()) {
            AtProbe::Register => {
                let reason = if cfg!(CONFIG_DEV_DAX_CXL) {
                    HmemReason::NotInCxlWindow
                } else {
                    HmemReason::NoCxlDeferral
                };
                register(host, target_nid, range, reason)
            }
            AtProbe::AwaitCxl => {
                host.log(DecisionLog::AwaitCxl, range);
                record(host, range, Disposition::Pending);
                host.queue_deferred_work();
                Ok(())
            }
            AtProbe::DeferToCxl => {
                host.log(DecisionLog::DeferToCxl, range);
                record(host, range, Disposition::LeftToCxl);
                Ok(())
            }
            AtProbe::Reevaluate => decide_cxl_range(host, target_nid, range, in_cxl_window),
        }
    }
}

/// The deferred work (hmem.c's `process_defer_work()`), run on "dax_hmem_wq" with a device
/// reference, without the device lock.
pub(crate) fn decide_after_cxl_probe(queued: QueuedHmemPlatform) {
    // Relies on cxl_acpi and cxl_pci having had a chance to load. Never take the device lock
    // before this: a probe waiting on the lock would keep this waiting forever. Opt-in: warn
    // while this waits too long (a probe somewhere does not finish).
    match (ffi::cxl_settle(), ffi::deferral_timeout()) {
        (0, 0) => ffi::wait_for_device_probe(),
        (0, timeout) => {
            let ((), watchdog) = DeferralWatchdog::watch(
                queued.device(),
                queued.id(),
                timeout,
                ffi::wait_for_device_probe,
            );
            if watchdog.is_err() {
                dev_err!(queued.device(), "no deferral watchdog: out of memory\n");
            }
        }
        (seconds, _) => settle_cxl(queued.device(), seconds),
    }

    let locked = queued.lock();
    let Some(host) = locked.bound() else {
        return;
    };
    if host.did_probe() {
        return;
    }
    host.set_did_probe();
    // As in hmem.c, a failure stops the walk (its visitor reports it).
    if walk::<DecideAfterCxlProbe>(&host).is_err() {
        disposition::replace_all(
            host.id(),
            |d| *d == Disposition::Pending,
            Disposition::Skipped(SkipReason::WalkStopped),
        );
    }
    summarise(host.device(), host.id(), "deferred walk");
}

/// The CXL-aware settle (`cxl_settle`): instead of waiting for every probe in the system,
/// wait until the CXL devices present have probed (`ffi::cxl_settle_state()`), polled every
/// 10 ms, for at most `seconds`. A CXL driver that userspace loads late (cxl_mem) is waited
/// for too, within that bound. Past it, fall back to 7.3's wait: a CXL probe that is slow
/// (cxl_pci waits up to a minute for media) must not lose its region to hmem.
fn settle_cxl(host: &device::Device, seconds: c_uint) {
    let start = Instant::<Monotonic>::now();
    let limit = Delta::from_secs(seconds.into());
    loop {
        let state = ffi::cxl_settle_state();
        if matches!(state, CxlSettle::Settled) {
            return;
        }
        if start.elapsed() >= limit {
            match state {
                CxlSettle::WaitingFor(dev) => dev_info!(
                    dev,
                    "dax_hmem: not probed after {seconds} s (cxl_settle), waiting for all probes\n"
                ),
                _ => dev_info!(
                    host,
                    "no CXL root after {seconds} s (cxl_settle), waiting for all probes\n"
                ),
            }
            ffi::wait_for_device_probe();
            return;
        }
        fsleep(Delta::from_millis(10));
    }
}

/// The deferred work's walk.
struct DecideAfterCxlProbe;

impl RangeVisitor for DecideAfterCxlProbe {
    fn visit(host: &HmemPlatform<'_>, target_nid: c_int, range: &HmemRange) -> Result {
        // No one else hears of a failure: the work has no caller to return it to.
        decide_cxl_range(host, target_nid, range, range.intersects_cxl_window())
            .inspect_err(|err| host.report_deferred_failure(*err, range))
    }
}

/// Decide a range after CXL's initial probe (or on a reload, with `reload=reevaluate`): a
/// committed region that contains it leaves it to CXL, else hmem registers it. With
/// `split=1`, a CXL range is cut at its windows' and committed regions' edges first, and each
/// piece is decided so.
fn decide_cxl_range(
    host: &HmemPlatform<'_>,
    target_nid: c_int,
    range: &HmemRange,
    in_cxl_window: bool,
) -> Result {
    if !(in_cxl_window && ffi::split()) {
        let decision = policy::after_cxl_probe(in_cxl_window, || range.claimed_by_cxl_region());
        return apply(host, target_nid, range, in_cxl_window, decision);
    }

    let span = range.span();
    let windows = ffi::cxl_windows(span)?;
    let regions = ffi::committed_regions(span)?;
    let mut bounds = KVec::with_capacity(windows.len() + regions.len(), GFP_KERNEL)?;
    let region_spans = regions.iter().map(|r| r.span);
    for bound in Iterator::chain(windows.iter().copied(), region_spans) {
        bounds.push(bound, GFP_KERNEL)?;
    }
    // Pieces get their memregion ids in address order, after the ranges registered at probe.
    policy::for_each_piece(span, &bounds, |piece| {
        // The first piece keeps the range's node. A later one takes its own start's, as
        // if firmware had described it apart: a piece in a CXL window belongs to the
        // window's node, not to the node of memory below the window.
        let piece_nid = if piece.start == span.start {
            target_nid
        } else {
            ffi::phys_to_target_node(piece.start).unwrap_or(target_nid)
        };
        let piece = range.piece(piece);
        let in_cxl_window = piece.intersects_cxl_window();
        let decision =
            policy::piece_after_cxl_probe(in_cxl_window, || piece.claimed_by_cxl_region());
        apply(host, piece_nid, &piece, in_cxl_window, decision)
    })
}

/// Carry out the decision for a range or piece.
fn apply(
    host: &HmemPlatform<'_>,
    target_nid: c_int,
    range: &HmemRange,
    in_cxl_window: bool,
    decision: AfterCxlProbe,
) -> Result {
    match decision {
        AfterCxlProbe::Skip => Ok(()),
        AfterCxlProbe::LeaveToCxl => {
            host.log(DecisionLog::CxlClaims, range);
            let region = ffi::committed_regions(range.span())
                .ok()
                .and_then(|regions| {
                    let owner = regions.iter().find(|r| r.span.contains(&range.span()));
                    owner.map(|r| r.id)
                });
            record(host, range, Disposition::Cxl { region });
            Ok(())
        }
        AfterCxlProbe::Register => {
            host.log(DecisionLog::CxlDidNotClaim, range);
            let reason = if in_cxl_window {
                HmemReason::NotContained
            } else {
                HmemReason::NotInCxlWindow
            };
            register(host, target_nid, range, reason)
        }
    }
}

/// Register the `hmem` device of a range, and record the outcome.
fn register(
    host: &HmemPlatform<'_>,
    target_nid: c_int,
    range: &HmemRange,
    reason: HmemReason,
) -> Result {
    // Registering probes the device, and may take long (kmem's hot-add): what the walk
    // decided so far is shown meanwhile.
    report_lost(host, disposition::flush_staged(host));
    let disposition = match register_hmem_device(host, target_nid, range) {
        Ok(Some(device)) => Disposition::Hmem { reason, device },
        Ok(None) => Disposition::Skipped(SkipReason::NotSoftReserved),
        Err(err) => {
            record(
                host,
                range,
                Disposition::Failed {
                    errno: err.to_errno(),
                },
            );
            return Err(err);
        }
    };
    record(host, range, disposition);
    Ok(())
}

/// Walk `host`'s ranges with `V`, its records staged and put in the report at the end.
fn walk<V: RangeVisitor>(host: &HmemPlatform<'_>) -> Result {
    let (result, lost) = disposition::walk_staged(host, || host.walk_ranges::<V>());
    report_lost(host, lost);
    result
}

/// Report records that running out of memory kept from the report (which says it is
/// incomplete); it only reports, so no decision changes.
fn report_lost(host: &HmemPlatform<'_>, lost: usize) {
    if lost > 0 {
        dev_err!(
            host.device(),
            "disposition report: cannot record {lost} ranges: out of memory\n"
        );
    }
}

/// Add a line to the disposition report (staged within a walk); it only reports, so running
/// out of memory for it changes no decision.
fn record(host: &HmemPlatform<'_>, range: &HmemRange, disposition: Disposition) {
    report_lost(host, disposition::record(host, range.span(), disposition));
}

/// With `summary=1`, one line per decision round: how many ranges went where.
fn summarise(host: &device::Device, host_id: c_int, round: &str) {
    if !ffi::summary() {
        return;
    }
    let t = disposition::tally(host_id);
    dev_info!(
        host,
        "{round}: {} hmem, {} cxl, {} left to cxl, {} pending, {} skipped, {} failed (dax_hmem/disposition in debugfs)\n",
        t.hmem,
        t.cxl,
        t.left_to_cxl,
        t.pending,
        t.skipped,
        t.failed
    );
}

/// Create the "hmem" device of one range, removed with the host (hmem.c's
/// `__hmem_register_device()`): its id, or `None` for a range no longer Soft Reserved, which
/// is skipped.
fn register_hmem_device(
    host: &HmemPlatform<'_>,
    target_nid: c_int,
    range: &HmemRange,
) -> Result<Option<c_int>> {
    if !range.is_soft_reserved() {
        return Ok(None);
    }

    let id =
        MemregionId::alloc().inspect_err(|_| host.report(AllocationFailure::Memregion, range))?;
    let raw_id = id.get();
    devres::register(host.device(), id, GFP_KERNEL)?;

    let mut pdev = NewPlatformDevice::alloc(HMEM, raw_id).ok_or_else(|| {
        host.report(AllocationFailure::Device, range);
        ENOMEM
    })?;
    pdev.place(host.device(), target_nid);
    pdev.add_memregion_info(target_nid, range)
        .inspect_err(|_| host.report(AllocationFailure::MemregionInfo, range))?;
    let pdev = pdev.add().map_err(|(pdev, err)| {
        host.report_add_failed(&pdev, range);
        err
    })?;

    devres::register(host.device(), pdev, GFP_KERNEL)?;
    Ok(Some(raw_id))
}
