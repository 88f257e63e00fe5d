// SPDX-License-Identifier: GPL-2.0

//! `struct hmem_platform_device`: the "hmem_platform" device, its ranges, its deferred work.

#[cfg(CONFIG_CXL_REGION)]
use super::cxl_region_contains_resource;
use super::{
    dax_hmem_dbg_await_cxl,
    dax_hmem_dbg_cxl_claims,
    dax_hmem_dbg_cxl_did_not_claim,
    dax_hmem_dbg_defer_to_cxl,
    is_this_modules_driver,
    platform_device_named,
    walk_hmem_resources,
    DaxHmemWorkqueue,
    HmemPlatformDevice,
    MemregionInfo,
    NewPlatformDevice,
    HMEM_PLATFORM, //
};
use crate::policy::Span;
use core::{
    marker::PhantomData,
    ptr::NonNull, //
};
use kernel::{
    bindings,
    device::{
        self,
        Bound,
        Core, //
    },
    error::{
        from_result,
        to_result, //
    },
    platform,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{
            Atomic,
            Relaxed, //
        },
        Mutex,
        MutexGuard, //
    },
};

/// A Soft Reserved range, or a piece of one (`split=1`): a `struct resource` of its own,
/// copied from the one `walk_hmem_resources()` hands out (device.c's `hmem_active` child, or
/// cxl_test's on its stack), so that it can be cut and handed to C after the walk's call.
pub(crate) struct HmemRange {
    res: bindings::resource,
}

impl HmemRange {
    /// The address range and type of `res`; none of its links.
    fn copy_of(res: &bindings::resource) -> Self {
        Self {
            res: bindings::resource {
                start: res.start,
                end: res.end,
                flags: res.flags,
                desc: res.desc,
                ..Default::default()
            },
        }
    }

    /// The piece `span` of this range, of the same type (`resource_contains()` compares it).
    pub(crate) fn piece(&self, span: Span) -> Self {
        Self {
            res: bindings::resource {
                start: span.start,
                end: span.end,
                ..self.res
            },
        }
    }

    fn as_raw(&self) -> *const bindings::resource {
        &raw const self.res
    }

    fn start(&self) -> u64 {
        self.res.start
    }

    fn end(&self) -> u64 {
        self.res.end
    }

    pub(crate) fn span(&self) -> Span {
        Span {
            start: self.start(),
            end: self.end(),
        }
    }

    /// `resource_size()`, wrapping as C does, so that CONFIG_RUST_OVERFLOW_CHECKS cannot
    /// panic on a resource over all of `u64`.
    fn size(&self) -> usize {
        // CAST: `resource_size_t` and `size_t` are both the native word here, as for C's
        // region_intersects() calls.
        self.end().wrapping_sub(self.start()).wrapping_add(1) as usize
    }

    /// Whether the range intersects a CXL window: `region_intersects(.., IORESOURCE_MEM,
    /// IORES_DESC_CXL) != REGION_DISJOINT`.
    pub(crate) fn intersects_cxl_window(&self) -> bool {
        // SAFETY: No preconditions; takes the resource lock itself.
        let rc = unsafe {
            bindings::region_intersects(
                self.start(),
                self.size(),
                // CAST: bindgen types these enumerators `u32`; C passes them as `unsigned long`.
                bindings::IORESOURCE_MEM as c_ulong,
                bindings::IORES_DESC_CXL as c_ulong,
            )
        };
        rc != bindings::REGION_DISJOINT as c_int
    }

    /// Whether the range is still Soft Reserved in iomem:
    /// `region_intersects_soft_reserve() == REGION_INTERSECTS`.
    pub(crate) fn is_soft_reserved(&self) -> bool {
        // SAFETY: No preconditions; takes the resource lock itself.
        let rc = unsafe { bindings::region_intersects_soft_reserve(self.start(), self.size()) };
        rc == bindings::REGION_INTERSECTS as c_int
    }

    /// `cxl_region_contains_resource()`: whether a committed CXL region contains the range.
    pub(crate) fn claimed_by_cxl_region(&self) -> bool {
        #[cfg(CONFIG_CXL_REGION)]
        // SAFETY: `res` is a valid resource for the call; the function only reads it.
        return unsafe { cxl_region_contains_resource(self.as_raw()) };
        #[cfg(not(CONFIG_CXL_REGION))]
        return false;
    }

    pub(super) fn memregion_info(&self, target_node: c_int) -> MemregionInfo {
        MemregionInfo {
            target_node,
            range: bindings::range {
                start: self.start(),
                end: self.end(),
            },
        }
    }
}

/// A decision line of hmem.c, printed with its text through dynamic debug.
#[derive(Clone, Copy)]
pub(crate) enum DecisionLog {
    /// "await CXL initial probe: %pr"
    AwaitCxl,
    /// "deferring range to CXL: %pr"
    DeferToCxl,
    /// "CXL claims resource, dropping: %pr"
    CxlClaims,
    /// "CXL did not claim resource, registering: %pr"
    CxlDidNotClaim,
}

/// An allocation-failure line of hmem.c about one range.
#[derive(Clone, Copy)]
pub(crate) enum AllocationFailure {
    /// "memregion allocation failure for %pr"
    Memregion,
    /// "device allocation failure for %pr"
    Device,
    /// "memregion_info allocation failure for %pr"
    MemregionInfo,
}

/// Called for each Soft Reserved range by [`HmemPlatform::walk_ranges`] (a `walk_hmem_fn`).
pub(crate) trait RangeVisitor {
    /// An error stops the walk, and the walk returns it.
    fn visit(host: &HmemPlatform<'_>, target_nid: c_int, range: &HmemRange) -> Result;
}

/// A bound `hmem_platform` device, with its device lock held.
///
/// # Invariants
///
/// For `'a`, `hpdev` is a live `struct hmem_platform_device`, bound to this module's
/// "hmem_platform" driver, and its device lock is held by the current thread. Because the
/// invariant names the current thread, the type is neither `Send` nor `Sync` (its `NonNull`
/// sees to it), and the records' stages (`records.rs`) rely on that.
pub(crate) struct HmemPlatform<'a> {
    hpdev: NonNull<HmemPlatformDevice>,
    _borrow: PhantomData<&'a HmemPlatformDevice>,
}

impl<'a> HmemPlatform<'a> {
    /// The device being probed or unbound (`to_hmem_platform_device()`), if it is named
    /// "hmem_platform"; `ENODEV` for any other device, which `driver_override` can bind here
    /// (hmem.c would take it for a `struct hmem_platform_device`).
    pub(crate) fn from_core(pdev: &'a platform::Device<Core<'_>>) -> Result<Self> {
        let pdev = platform_device_named(pdev.as_ref(), HMEM_PLATFORM).ok_or(ENODEV)?;
        // SAFETY: Every platform device named "hmem_platform" is the `pdev` of a
        // `struct hmem_platform_device` (bus.h): device.c's and cxl_test's hmem_test.c's, the
        // only two, are.
        let hpdev = unsafe { kernel::container_of!(pdev, HmemPlatformDevice, pdev) };
        // INVARIANT: A `Core` device is being probed or unbound: bound, with the device lock
        // held, for the driver callback, which uses `Self` only within it (it is not `Send`,
        // and is not kept in the driver's data).
        Ok(Self {
            // SAFETY: `container_of!` of a non-null pointer.
            hpdev: unsafe { NonNull::new_unchecked(hpdev) },
            _borrow: PhantomData,
        })
    }

    pub(super) fn raw_device(&self) -> *mut bindings::device {
        // SAFETY: By the type invariant `hpdev` is live.
        unsafe { &raw mut (*self.hpdev.as_ptr()).pdev.dev }
    }

    /// The device's id: 0 for device.c's, cxl_test's own for its.
    pub(crate) fn id(&self) -> c_int {
        // SAFETY: By the type invariant `hpdev` is live; `id` is set before registration.
        unsafe { (*self.hpdev.as_ptr()).pdev.id }
    }

    /// The host device, for devres and as the parent of the `hmem` devices.
    pub(crate) fn device(&self) -> &'a device::Device<Bound> {
        // SAFETY: By the type invariant the device is live and bound for `'a`.
        unsafe { device::Device::from_raw(self.raw_device()) }
    }

    /// Whether the deferred walk already ran for this device (`did_probe`).
    pub(crate) fn did_probe(&self) -> bool {
        // SAFETY: By the type invariant `hpdev` is live; the device lock serialises `did_probe`.
        unsafe { (*self.hpdev.as_ptr()).did_probe }
    }

    /// Latch `did_probe`: the deferred walk runs once per device, ever.
    pub(crate) fn set_did_probe(&self) {
        // SAFETY: By the type invariant `hpdev` is live; the device lock serialises `did_probe`.
        unsafe { (*self.hpdev.as_ptr()).did_probe = true };
    }

    fn work(&self) -> *mut bindings::work_struct {
        // SAFETY: By the type invariant `hpdev` is live.
        unsafe { &raw mut (*self.hpdev.as_ptr()).work }
    }

    /// `work_pending(&hpdev->work)`.
    pub(crate) fn work_pending(&self) -> bool {
        // SAFETY: `work.data` is an `atomic_long_t` that the workqueue code changes atomically;
        // read it as an atomic, as test_bit() does.
        let data = unsafe { Atomic::from_ptr(&raw mut (*self.work()).data.counter) }.load(Relaxed);
        data & (1 << bindings::work_bits_WORK_STRUCT_PENDING_BIT) != 0
    }

    /// Queue the deferred decision on "dax_hmem_wq", holding a device reference while it is
    /// queued; a work already queued stays queued once, and the extra reference is dropped
    /// (hmem.c's `get_device(); if (!queue_work()) put_device();`).
    pub(crate) fn queue_deferred_work(&self) {
        let work = self.work();
        // SAFETY: `work` is live. Writing `func` of a possibly queued work is what hmem.c does
        // too; the value is the same for every queuer, so WRITE_ONCE() semantics suffice.
        unsafe { (&raw mut (*work).func).write_volatile(Some(run_deferred_work)) };
        let host: &device::Device = self.device();
        // Handed to `run_deferred_work()`, or taken back below.
        let reference = ARef::into_raw(ARef::from(host));
        // SAFETY: `work` is live and its `func` set above. Its storage is static: device.c's
        // is permanent, cxl_test's must stay loaded while a work is queued (see
        // `HmemPlatformDevice`), as for hmem.c. This runs in probes and deferred walks, which
        // run while the queue exists.
        let queued = unsafe { DaxHmemWorkqueue::queue_work(work) };
        if !queued {
            // SAFETY: The reference `into_raw()` gave above, not handed over.
            drop(unsafe { ARef::from_raw(reference) });
        }
    }

    /// `walk_hmem_resources(host, V::visit)`.
    pub(crate) fn walk_ranges<V: RangeVisitor>(&self) -> Result {
        // SAFETY: `visit_range::<V>` meets `walk_hmem_fn`; the walk passes this device back.
        to_result(unsafe { walk_hmem_resources(self.raw_device(), Some(visit_range::<V>)) })
    }

    /// Print one of hmem.c's decision lines (dynamic debug, module dax_hmem).
    pub(crate) fn log(&self, line: DecisionLog, range: &HmemRange) {
        let print = match line {
            DecisionLog::AwaitCxl => dax_hmem_dbg_await_cxl,
            DecisionLog::DeferToCxl => dax_hmem_dbg_defer_to_cxl,
            DecisionLog::CxlClaims => dax_hmem_dbg_cxl_claims,
            DecisionLog::CxlDidNotClaim => dax_hmem_dbg_cxl_did_not_claim,
        };
        // SAFETY: A live device and resource.
        unsafe { print(self.raw_device(), range.as_raw()) };
    }

    /// Print one of hmem.c's error lines about `range`.
    pub(crate) fn report(&self, failure: AllocationFailure, range: &HmemRange) {
        let format = match failure {
            AllocationFailure::Memregion => c"memregion allocation failure for %pr\n",
            AllocationFailure::Device => c"device allocation failure for %pr\n",
            AllocationFailure::MemregionInfo => c"memregion_info allocation failure for %pr\n",
        };
        // SAFETY: Each format takes one `struct resource *`, which is live.
        unsafe { bindings::_dev_err(self.raw_device(), format.as_char_ptr(), range.as_raw()) };
    }

    /// Print that the deferred walk stopped at `range` with `err`. hmem.c drops the walk's
    /// error: the range, and the later ranges that CXL does not claim, stay no one's.
    pub(crate) fn report_deferred_failure(&self, err: Error, range: &HmemRange) {
        // SAFETY: A live device; "%pr" gets a live resource, "%d" an int.
        unsafe {
            bindings::_dev_err(
                self.raw_device(),
                c"deferred walk failed at %pr (%d): it and later ranges CXL does not claim stay unowned\n"
                    .as_char_ptr(),
                range.as_raw(),
                err.to_errno(),
            )
        };
    }

    /// Print hmem.c's "%s add failed for %pr" about a device that `platform_device_add()`
    /// refused; "(null)", as printk prints C's NULL, when it failed before naming it.
    pub(crate) fn report_add_failed(&self, pdev: &NewPlatformDevice, range: &HmemRange) {
        let name = pdev.name().unwrap_or(c"(null)");
        // SAFETY: "%s" gets a C string, "%pr" a live resource.
        unsafe {
            bindings::_dev_err(
                self.raw_device(),
                c"%s add failed for %pr\n".as_char_ptr(),
                name.as_char_ptr(),
                range.as_raw(),
            )
        };
    }
}

/// The `walk_hmem_fn` behind [`HmemPlatform::walk_ranges`].
///
/// # Safety
///
/// Only for `walk_hmem_resources()` called by [`HmemPlatform::walk_ranges`]: `host` is that
/// `HmemPlatform`'s device, and `res` a live range for the duration of the call.
unsafe extern "C" fn visit_range<V: RangeVisitor>(
    host: *mut bindings::device,
    target_nid: c_int,
    res: *const bindings::resource,
) -> c_int {
    // SAFETY: `host` is the `pdev.dev` of the walking `HmemPlatform`.
    let hpdev = unsafe { kernel::container_of!(host, HmemPlatformDevice, pdev.dev) };
    // INVARIANT: `walk_ranges()` borrows its `HmemPlatform` for the whole walk, and the walk
    // calls back synchronously (device.c's loop, cxl_test's mock), so live, bound and locked
    // by the current thread hold during this call.
    let host = HmemPlatform {
        // SAFETY: `container_of!` of a non-null pointer.
        hpdev: unsafe { NonNull::new_unchecked(hpdev) },
        _borrow: PhantomData,
    };
    // SAFETY: The walk passes a resource that is live for this call (device.c's under
    // `hmem_resource_lock`, cxl_test's on its stack), never NULL; it is copied here.
    let range = HmemRange::copy_of(unsafe { &*res });
    from_result(|| V::visit(&host, target_nid, &range).map(|()| 0))
}

/// An `hmem_platform` device whose deferred work is running: it holds the device reference
/// taken when the work was queued, and puts it on drop.
pub(crate) struct QueuedHmemPlatform {
    hpdev: NonNull<HmemPlatformDevice>,
    reference: ARef<device::Device>,
}

impl QueuedHmemPlatform {
    /// The device, which the reference keeps.
    pub(crate) fn device(&self) -> &device::Device {
        &self.reference
    }

    /// The device's id (see [`HmemPlatform::id`]).
    pub(crate) fn id(&self) -> c_int {
        // SAFETY: The reference keeps the device live; `id` is set before registration.
        unsafe { (*self.hpdev.as_ptr()).pdev.id }
    }

    /// `guard(device)(dev)`: take the device lock.
    pub(crate) fn lock(&self) -> LockedHmemPlatform<'_> {
        // SAFETY: The device's `mutex` is initialised (device_initialize()), and live while
        // `self` holds its reference.
        let mutex =
            unsafe { Mutex::<()>::from_raw(&raw mut (*self.hpdev.as_ptr()).pdev.dev.mutex) };
        LockedHmemPlatform {
            hpdev: self.hpdev,
            _guard: mutex.lock(),
        }
    }
}

/// A [`QueuedHmemPlatform`] with its device lock held, released on drop.
pub(crate) struct LockedHmemPlatform<'a> {
    hpdev: NonNull<HmemPlatformDevice>,
    _guard: MutexGuard<'a, ()>,
}

impl LockedHmemPlatform<'_> {
    /// The device, if this module's driver is still bound to it (`dev->driver`).
    pub(crate) fn bound(&self) -> Option<HmemPlatform<'_>> {
        let hpdev = self.hpdev;
        // SAFETY: The device is live; `driver` is stable under the device lock, which we hold.
        let driver = unsafe { (*hpdev.as_ptr()).pdev.dev.driver };
        // SAFETY: A bound device's driver is registered. Bound to another driver through
        // `driver_override` since the work was queued, the device is not ours to walk.
        let ours = unsafe { is_this_modules_driver(driver, HMEM_PLATFORM) };
        // INVARIANT: Live (reference), locked (`self`), and bound to this module's driver.
        ours.then_some(HmemPlatform {
            hpdev,
            _borrow: PhantomData,
        })
    }
}

/// The `work_func_t` behind [`HmemPlatform::queue_deferred_work`]: runs
/// [`crate::hmem_platform::decide_after_cxl_probe`] with the device reference, without the
/// device lock.
///
/// # Safety
///
/// Only as the `func` of an `hmem_platform_device`'s `work`, queued with a device reference.
unsafe extern "C" fn run_deferred_work(work: *mut bindings::work_struct) {
    // SAFETY: `work` is the `work` of an `hmem_platform_device`.
    let hpdev = unsafe { kernel::container_of!(work, HmemPlatformDevice, work) };
    // SAFETY: `container_of!` of a non-null pointer.
    let hpdev = unsafe { NonNull::new_unchecked(hpdev) };
    // CAST: `device::Device` is `#[repr(transparent)]` over `Opaque<bindings::device>`.
    // SAFETY: Taking over the reference that `queue_deferred_work()` took for this run.
    let reference = unsafe {
        ARef::from_raw(NonNull::new_unchecked(&raw mut (*hpdev.as_ptr()).pdev.dev).cast())
    };
    crate::hmem_platform::decide_after_cxl_probe(QueuedHmemPlatform { hpdev, reference });
}
