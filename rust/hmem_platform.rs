// SPDX-License-Identifier: GPL-2.0

//! The "hmem_platform" driver: one device stands for all Soft Reserved ranges. Its probe
//! creates an "hmem" device for each range outside CXL windows, and queues one walk that
//! decides the CXL ranges after CXL's initial probe (hmem.c's `hmem_register_device()` and
//! `process_defer_work()`).

use crate::{
    ffi::{
        self,
        AllocationFailure,
        DecisionLog,
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
    device::Core,
    devres,
    platform,
    prelude::*, //
};

pub(crate) struct HmemPlatformDriver;

impl platform::Driver for HmemPlatformDriver {
    type IdInfo = ();
    type Data<'bound> = Self;

    fn probe<'bound>(
        pdev: &'bound platform::Device<Core<'_>>,
        _id_info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self, Error> + 'bound {
        let host = HmemPlatform::from_probe(pdev).inspect_err(|_| {
            dev_err!(
                pdev.as_ref(),
                "not an hmem_platform device, refusing to bind\n"
            );
        })?;

        // The queue is only flushed on module unload: fail a rebind while work is pending.
        if host.work_pending() {
            return Err(EBUSY);
        }

        host.walk_ranges::<RegisterAtProbe>()?;
        Ok(Self)
    }
}

/// The probe's walk.
struct RegisterAtProbe;

impl RangeVisitor for RegisterAtProbe {
    fn visit(host: &HmemPlatform<'_>, target_nid: c_int, range: &HmemRange<'_>) -> Result {
        let in_cxl_window = cfg!(CONFIG_DEV_DAX_CXL) && range.intersects_cxl_window();

        match policy::at_probe(in_cxl_window, host.did_probe()) {
            AtProbe::Register => register_hmem_device(host, target_nid, range),
            AtProbe::AwaitCxl => {
                host.log(DecisionLog::AwaitCxl, range);
                host.queue_deferred_work();
                Ok(())
            }
            AtProbe::DeferToCxl => {
                host.log(DecisionLog::DeferToCxl, range);
                Ok(())
            }
        }
    }
}

/// The deferred work (hmem.c's `process_defer_work()`), run on "dax_hmem_wq" with a device
/// reference, without the device lock.
pub(crate) fn decide_after_cxl_probe(queued: QueuedHmemPlatform) {
    // Relies on cxl_acpi and cxl_pci having had a chance to load. Never take the device lock
    // before this: a probe waiting on the lock would keep this waiting forever.
    ffi::wait_for_device_probe();

    let locked = queued.lock();
    let Some(host) = locked.bound() else {
        return;
    };
    if host.did_probe() {
        return;
    }
    host.set_did_probe();
    // As in hmem.c, a failure stops the walk (its visitor reports it).
    let _ = host.walk_ranges::<DecideAfterCxlProbe>();
}

/// The deferred work's walk.
struct DecideAfterCxlProbe;

impl RangeVisitor for DecideAfterCxlProbe {
    fn visit(host: &HmemPlatform<'_>, target_nid: c_int, range: &HmemRange<'_>) -> Result {
        match policy::after_cxl_probe(range.intersects_cxl_window(), || {
            range.claimed_by_cxl_region()
        }) {
            AfterCxlProbe::Skip => Ok(()),
            AfterCxlProbe::LeaveToCxl => {
                host.log(DecisionLog::CxlClaims, range);
                Ok(())
            }
            AfterCxlProbe::Register => {
                host.log(DecisionLog::CxlDidNotClaim, range);
                // No one else hears of it: the work has no caller to return it to.
                register_hmem_device(host, target_nid, range)
                    .inspect_err(|err| host.report_deferred_failure(*err, range))
            }
        }
    }
}

/// Create the "hmem" device of one range, removed with the host (hmem.c's
/// `__hmem_register_device()`). A range no longer Soft Reserved is skipped.
fn register_hmem_device(
    host: &HmemPlatform<'_>,
    target_nid: c_int,
    range: &HmemRange<'_>,
) -> Result {
    if !range.is_soft_reserved() {
        return Ok(());
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

    devres::register(host.device(), pdev, GFP_KERNEL)
}
