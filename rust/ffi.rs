// SPDX-License-Identifier: GPL-2.0

//! All of dax_hmem's raw FFI, behind small typed wrappers: the C declarations that `bindings`
//! lacks (`drivers/dax/bus.h`, `<linux/dax.h>`, `<linux/memregion.h>`, the CXL core and our C
//! glue), `#[repr(C)]` mirrors checked against the kernel's headers at build time, and the
//! workqueue, device-lock and platform-device calls the `kernel` crate has no API for.
//!
//! The rest of the crate has no `unsafe`.

use core::{
    ffi::c_void,
    marker::PhantomData,
    mem::{
        offset_of,
        size_of, //
    },
    ptr::{
        self,
        NonNull, //
    },
};
use kernel::{
    bindings,
    device::{
        self,
        Bound,
        Core, //
    },
    error::{
        from_err_ptr,
        to_result, //
    },
    platform,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{
            Acquire,
            Atomic,
            Relaxed,
            Release, //
        },
    },
    types::Opaque,
    ThisModule, //
};

/// Sizes, offsets and macro values read from the kernel's headers at build time: Kbuild compiles
/// `c_abi.c` to assembly and turns each `DEFINE()` into a constant here.
mod c_abi {
    include!("c_abi_generated.rs");
}

/// `struct hmem_platform_device` (bus.h). Built-in `device.c` owns the one instance (cxl_test's
/// `hmem_test.c` a second), so `work` and `did_probe` outlive this module: that is what makes
/// the latch survive a reload.
#[repr(C)]
struct HmemPlatformDevice {
    pdev: bindings::platform_device,
    work: bindings::work_struct,
    did_probe: bool,
}

/// `struct memregion_info` (memregion.h): an `hmem` device's platform data.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct MemregionInfo {
    target_node: c_int,
    range: bindings::range,
}

/// `struct dev_dax_data` (bus.h): the arguments of `devm_create_dev_dax()`.
#[repr(C)]
struct DevDaxData {
    dax_region: *mut DaxRegionC,
    pgmap: *mut c_void,
    size: bindings::resource_size_t,
    id: c_int,
    memmap_on_memory: bool,
}

/// `struct dax_region`, only ever behind a pointer.
#[repr(C)]
struct DaxRegionC {
    _opaque: [u8; 0],
}

/// `struct dev_dax`, only ever behind a pointer.
#[repr(C)]
struct DevDaxC {
    _opaque: [u8; 0],
}

// A drift between these mirrors and the kernel's headers is a build error here.
const _: () = {
    assert!(size_of::<HmemPlatformDevice>() == c_abi::HMEM_PLATFORM_DEVICE_SIZE);
    assert!(offset_of!(HmemPlatformDevice, pdev) == c_abi::HMEM_PLATFORM_DEVICE_PDEV);
    assert!(offset_of!(HmemPlatformDevice, work) == c_abi::HMEM_PLATFORM_DEVICE_WORK);
    assert!(offset_of!(HmemPlatformDevice, did_probe) == c_abi::HMEM_PLATFORM_DEVICE_DID_PROBE);
    assert!(size_of::<bool>() == c_abi::HMEM_PLATFORM_DEVICE_DID_PROBE_SIZE);

    assert!(size_of::<MemregionInfo>() == c_abi::MEMREGION_INFO_SIZE);
    assert!(offset_of!(MemregionInfo, target_node) == c_abi::MEMREGION_INFO_TARGET_NODE);
    assert!(offset_of!(MemregionInfo, range) == c_abi::MEMREGION_INFO_RANGE);

    assert!(size_of::<DevDaxData>() == c_abi::DEV_DAX_DATA_SIZE);
    assert!(offset_of!(DevDaxData, dax_region) == c_abi::DEV_DAX_DATA_DAX_REGION);
    assert!(offset_of!(DevDaxData, pgmap) == c_abi::DEV_DAX_DATA_PGMAP);
    assert!(offset_of!(DevDaxData, size) == c_abi::DEV_DAX_DATA_SIZE_FIELD);
    assert!(offset_of!(DevDaxData, id) == c_abi::DEV_DAX_DATA_ID);
    assert!(offset_of!(DevDaxData, memmap_on_memory) == c_abi::DEV_DAX_DATA_MEMMAP_ON_MEMORY);
};

/// `IORESOURCE_DAX_KMEM` (bus.h): hand the new dax device to dax_kmem.
pub(crate) const IORESOURCE_DAX_KMEM: c_ulong = c_abi::IORESOURCE_DAX_KMEM_VALUE as c_ulong;

/// `PMD_SIZE`: the alignment of an hmem dax region.
pub(crate) const PMD_SIZE: c_uint = c_abi::PMD_SIZE_VALUE as c_uint;

/// `walk_hmem_fn` (dax.h).
type WalkHmemFn = Option<
    unsafe extern "C" fn(
        host: *mut bindings::device,
        target_nid: c_int,
        res: *const bindings::resource,
    ) -> c_int,
>;

// `bindings::device` contains zero-sized C structs (for example `lockdep_map` pieces), which
// `improper_ctypes` flags; here they are only ever behind pointers.
#[allow(improper_ctypes)]
unsafe extern "C" {
    // dax.h, drivers/dax/hmem/device.c (built in).
    fn walk_hmem_resources(host: *mut bindings::device, f: WalkHmemFn) -> c_int;

    // bus.h, drivers/dax/bus.c (dax.ko).
    fn alloc_dax_region(
        parent: *mut bindings::device,
        region_id: c_int,
        range: *mut bindings::range,
        target_node: c_int,
        align: c_uint,
        flags: c_ulong,
    ) -> *mut DaxRegionC;
    fn devm_create_dev_dax(data: *mut DevDaxData) -> *mut DevDaxC;

    // memregion.h, lib/memregion.c.
    fn memregion_alloc(gfp: bindings::gfp_t) -> c_int;
    fn memregion_free(id: c_int);

    // cxl.h, drivers/cxl/core/region.c; exported to "dax_hmem" only.
    #[cfg(CONFIG_CXL_REGION)]
    fn cxl_region_contains_resource(res: *const bindings::resource) -> bool;

    // dax_hmem_glue.h.
    static dax_hmem_region_idle: bool;
    fn dax_hmem_dbg_await_cxl(host: *mut bindings::device, res: *const bindings::resource);
    fn dax_hmem_dbg_defer_to_cxl(host: *mut bindings::device, res: *const bindings::resource);
    fn dax_hmem_dbg_cxl_claims(host: *mut bindings::device, res: *const bindings::resource);
    fn dax_hmem_dbg_cxl_did_not_claim(host: *mut bindings::device, res: *const bindings::resource);
}

/// The raw `struct device` behind a Rust device reference.
fn raw_device<Ctx: device::DeviceContext>(dev: &device::Device<Ctx>) -> *mut bindings::device {
    // CAST: `device::Device` is `#[repr(transparent)]` over `Opaque<bindings::device>`; its own
    // `as_raw()` is private to the `kernel` crate.
    ptr::from_ref(dev).cast_mut().cast()
}

/// The raw `struct platform_device` behind a Rust platform device reference.
fn raw_platform_device<Ctx: device::DeviceContext>(
    pdev: &platform::Device<Ctx>,
) -> *mut bindings::platform_device {
    // CAST: `platform::Device` is `#[repr(transparent)]` over
    // `Opaque<bindings::platform_device>`; its own `as_raw()` is private to the `kernel` crate.
    ptr::from_ref(pdev).cast_mut().cast()
}

/// The `region_idle` module parameter (0644, in `dax_hmem_glue.c`).
pub(crate) fn region_idle() -> bool {
    // SAFETY: `dax_hmem_region_idle` is a `bool` defined in dax_hmem_glue.c; sysfs writes it at
    // any time, so read it once, volatile, as READ_ONCE() would.
    unsafe { ptr::addr_of!(dax_hmem_region_idle).read_volatile() }
}

/// `request_module(name)`; like hmem.c, the outcome does not matter.
pub(crate) fn request_module(name: &'static CStr) {
    // SAFETY: "%s" with one C string argument.
    unsafe { bindings::__request_module(true, c"%s".as_char_ptr(), name.as_char_ptr()) };
}

/// `wait_for_device_probe()`: returns once no probe is in flight and deferred probes ran.
pub(crate) fn wait_for_device_probe() {
    // SAFETY: No preconditions; it sleeps, and callers are in process context.
    unsafe { bindings::wait_for_device_probe() };
}

/// `numa_map_to_online_node()`.
fn numa_map_to_online_node(nid: c_int) -> c_int {
    // SAFETY: No preconditions.
    unsafe { bindings::numa_nearest_node(nid, bindings::node_states_N_ONLINE) }
}

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

/// A Soft Reserved range, as `walk_hmem_resources()` hands it to a [`RangeVisitor`].
///
/// # Invariants
///
/// `res` is a live `struct resource` of `hmem_active` (or of cxl_test's mock), stable for `'a`.
pub(crate) struct HmemRange<'a> {
    res: NonNull<bindings::resource>,
    _borrow: PhantomData<&'a bindings::resource>,
}

impl HmemRange<'_> {
    fn as_raw(&self) -> *mut bindings::resource {
        self.res.as_ptr()
    }

    fn start(&self) -> u64 {
        // SAFETY: By the type invariant `res` is live.
        unsafe { (*self.as_raw()).start }
    }

    fn end(&self) -> u64 {
        // SAFETY: By the type invariant `res` is live.
        unsafe { (*self.as_raw()).end }
    }

    /// `resource_size()`.
    fn size(&self) -> usize {
        // CAST: `resource_size_t` and `size_t` are both the native word here, as for C's
        // region_intersects() calls.
        (self.end() - self.start() + 1) as usize
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
        // SAFETY: By the type invariant `res` is live.
        return unsafe { cxl_region_contains_resource(self.as_raw()) };
        #[cfg(not(CONFIG_CXL_REGION))]
        return false;
    }

    fn memregion_info(&self, target_node: c_int) -> MemregionInfo {
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
    fn visit(host: &HmemPlatform<'_>, target_nid: c_int, range: &HmemRange<'_>) -> Result;
}

/// The work queued by [`HmemPlatform::queue_deferred_work`].
pub(crate) trait DeferredWork {
    /// Runs on "dax_hmem_wq" with a device reference, without the device lock.
    fn run(host: QueuedHmemPlatform);
}

/// A bound `hmem_platform` device, with its device lock held.
///
/// # Invariants
///
/// For `'a`, `hpdev` is a live `struct hmem_platform_device`, bound to this module's
/// "hmem_platform" driver, and its device lock is held by the current thread.
pub(crate) struct HmemPlatform<'a> {
    hpdev: NonNull<HmemPlatformDevice>,
    _borrow: PhantomData<&'a HmemPlatformDevice>,
}

impl<'a> HmemPlatform<'a> {
    /// The device being probed (`to_hmem_platform_device()`).
    pub(crate) fn from_probe(pdev: &'a platform::Device<Core<'_>>) -> Self {
        let pdev = raw_platform_device(pdev);
        // SAFETY: Only devices named "hmem_platform" match this driver, and each is the `pdev`
        // of a `struct hmem_platform_device` (device.c, cxl_test's hmem_test.c), as hmem.c
        // assumes too.
        let hpdev = unsafe { kernel::container_of!(pdev, HmemPlatformDevice, pdev) };
        // INVARIANT: A `Core` device is being probed: bound for the probe's duration, and the
        // driver core holds its device lock.
        Self {
            // SAFETY: `container_of!` of a non-null pointer.
            hpdev: unsafe { NonNull::new_unchecked(hpdev) },
            _borrow: PhantomData,
        }
    }

    fn raw_device(&self) -> *mut bindings::device {
        // SAFETY: By the type invariant `hpdev` is live.
        unsafe { &raw mut (*self.hpdev.as_ptr()).pdev.dev }
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

    /// Queue `W` on "dax_hmem_wq", holding a device reference while it is queued; a work already
    /// queued stays queued once, and the extra reference is dropped (hmem.c's
    /// `get_device(); if (!queue_work()) put_device();`).
    pub(crate) fn queue_deferred_work<W: DeferredWork>(&self) {
        let work = self.work();
        let wq = DAX_HMEM_WQ.load(Acquire);
        // SAFETY: `work` is live. Writing `func` of a possibly queued work is what hmem.c does
        // too; the value is the same for every queuer, so WRITE_ONCE() semantics suffice.
        unsafe { (&raw mut (*work).func).write_volatile(Some(run_deferred_work::<W>)) };
        // SAFETY: The device is live (type invariant); the reference is put by
        // `run_deferred_work()` or below.
        unsafe { bindings::get_device(self.raw_device()) };
        // SAFETY: `wq` is the module's live queue: probes only run while the module's drivers
        // are registered, which is while the queue exists. `work` is live: it is in a device
        // that outlives this module.
        let queued = unsafe {
            bindings::queue_work_on(bindings::wq_misc_consts_WORK_CPU_UNBOUND as c_int, wq, work)
        };
        if !queued {
            // SAFETY: The reference taken above.
            unsafe { bindings::put_device(self.raw_device()) };
        }
    }

    /// `walk_hmem_resources(host, V::visit)`.
    pub(crate) fn walk_ranges<V: RangeVisitor>(&self) -> Result {
        // SAFETY: `visit_range::<V>` meets `walk_hmem_fn`; the walk passes this device back.
        to_result(unsafe { walk_hmem_resources(self.raw_device(), Some(visit_range::<V>)) })
    }

    /// Print one of hmem.c's decision lines (dynamic debug, module dax_hmem).
    pub(crate) fn log(&self, line: DecisionLog, range: &HmemRange<'_>) {
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
    pub(crate) fn report(&self, failure: AllocationFailure, range: &HmemRange<'_>) {
        let format = match failure {
            AllocationFailure::Memregion => c"memregion allocation failure for %pr\n",
            AllocationFailure::Device => c"device allocation failure for %pr\n",
            AllocationFailure::MemregionInfo => c"memregion_info allocation failure for %pr\n",
        };
        // SAFETY: Each format takes one `struct resource *`, which is live.
        unsafe { bindings::_dev_err(self.raw_device(), format.as_char_ptr(), range.as_raw()) };
    }

    /// Print hmem.c's "%s add failed for %pr" about a device that `platform_device_add()`
    /// refused.
    pub(crate) fn report_add_failed(&self, pdev: &NewPlatformDevice, range: &HmemRange<'_>) {
        // SAFETY: `pdev` is allocated, so its `dev` is initialised and has a name.
        let name = unsafe { bindings::dev_name(&raw mut (*pdev.0.as_ptr()).dev) };
        // SAFETY: "%s" gets a C string, "%pr" a live resource.
        unsafe {
            bindings::_dev_err(
                self.raw_device(),
                c"%s add failed for %pr\n".as_char_ptr(),
                name,
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
    // INVARIANT: `walk_ranges()` borrows its `HmemPlatform` for the whole walk, so live, bound
    // and locked hold during this call.
    let host = HmemPlatform {
        // SAFETY: `container_of!` of a non-null pointer.
        hpdev: unsafe { NonNull::new_unchecked(hpdev) },
        _borrow: PhantomData,
    };
    // INVARIANT: The walk holds `hmem_resource_lock`, and mock ranges are static.
    let range = HmemRange {
        // SAFETY: The walk passes a resource, never NULL.
        res: unsafe { NonNull::new_unchecked(res.cast_mut()) },
        _borrow: PhantomData,
    };
    match V::visit(&host, target_nid, &range) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// An `hmem_platform` device whose deferred work is running: it holds the device reference
/// taken when the work was queued, and puts it on drop.
pub(crate) struct QueuedHmemPlatform {
    hpdev: NonNull<HmemPlatformDevice>,
    _reference: ARef<device::Device>,
}

impl QueuedHmemPlatform {
    /// `guard(device)(dev)`: take the device lock.
    pub(crate) fn lock(&self) -> LockedHmemPlatform<'_> {
        // SAFETY: The reference keeps the device live.
        unsafe { bindings::mutex_lock(&raw mut (*self.hpdev.as_ptr()).pdev.dev.mutex) };
        LockedHmemPlatform { queued: self }
    }
}

/// The device lock of a [`QueuedHmemPlatform`], released on drop.
pub(crate) struct LockedHmemPlatform<'a> {
    queued: &'a QueuedHmemPlatform,
}

impl LockedHmemPlatform<'_> {
    /// The device, if this module's driver is still bound to it (`dev->driver`).
    pub(crate) fn bound(&self) -> Option<HmemPlatform<'_>> {
        let hpdev = self.queued.hpdev;
        // SAFETY: The device is live; `driver` is stable under the device lock, which we hold.
        let driver = unsafe { (*hpdev.as_ptr()).pdev.dev.driver };
        // INVARIANT: Live (reference), locked (`self`), and bound: only "hmem_platform", this
        // module's driver, binds these devices.
        (!driver.is_null()).then_some(HmemPlatform {
            hpdev,
            _borrow: PhantomData,
        })
    }
}

impl Drop for LockedHmemPlatform<'_> {
    fn drop(&mut self) {
        // SAFETY: Taken in `lock()`, released once.
        unsafe { bindings::mutex_unlock(&raw mut (*self.queued.hpdev.as_ptr()).pdev.dev.mutex) };
    }
}

/// The `work_func_t` behind [`HmemPlatform::queue_deferred_work`].
///
/// # Safety
///
/// Only as the `func` of an `hmem_platform_device`'s `work`, queued with a device reference.
unsafe extern "C" fn run_deferred_work<W: DeferredWork>(work: *mut bindings::work_struct) {
    // SAFETY: `work` is the `work` of an `hmem_platform_device`.
    let hpdev = unsafe { kernel::container_of!(work, HmemPlatformDevice, work) };
    // SAFETY: `container_of!` of a non-null pointer.
    let hpdev = unsafe { NonNull::new_unchecked(hpdev) };
    // CAST: `device::Device` is `#[repr(transparent)]` over `Opaque<bindings::device>`.
    // SAFETY: Taking over the reference that `queue_deferred_work()` took for this run.
    let reference = unsafe {
        ARef::from_raw(NonNull::new_unchecked(&raw mut (*hpdev.as_ptr()).pdev.dev).cast())
    };
    W::run(QueuedHmemPlatform {
        hpdev,
        _reference: reference,
    });
}

/// A memregion id (`memregion_alloc()`), freed on drop.
pub(crate) struct MemregionId(c_int);

impl MemregionId {
    /// `memregion_alloc(GFP_KERNEL)`; any failure is `ENOMEM`, as in hmem.c.
    pub(crate) fn alloc() -> Result<Self> {
        // SAFETY: No preconditions.
        let id = unsafe { memregion_alloc(bindings::GFP_KERNEL) };
        if id < 0 {
            return Err(ENOMEM);
        }
        Ok(Self(id))
    }

    pub(crate) fn get(&self) -> c_int {
        self.0
    }
}

impl Drop for MemregionId {
    fn drop(&mut self) {
        // SAFETY: Allocated by `alloc()`, freed once.
        unsafe { memregion_free(self.0) };
    }
}

/// A platform device from `platform_device_alloc()`, not added yet; put on drop.
pub(crate) struct NewPlatformDevice(NonNull<bindings::platform_device>);

impl NewPlatformDevice {
    /// `platform_device_alloc(name, id)`.
    pub(crate) fn alloc(name: &'static CStr, id: c_int) -> Option<Self> {
        // SAFETY: `name` is a C string; the device copies it.
        NonNull::new(unsafe { bindings::platform_device_alloc(name.as_char_ptr(), id) }).map(Self)
    }

    /// Parent it to `parent` and put it on the online node nearest to `target_node`.
    pub(crate) fn place(&mut self, parent: &device::Device<Bound>, target_node: c_int) {
        let dev = self.raw_device();
        // SAFETY: Not added yet, so these fields are ours; device_add() takes its own reference
        // on the parent.
        unsafe { (*dev).parent = raw_device(parent) };
        #[cfg(CONFIG_NUMA)]
        // SAFETY: As above.
        unsafe {
            (*dev).numa_node = numa_map_to_online_node(target_node)
        };
        #[cfg(not(CONFIG_NUMA))]
        let _ = target_node;
    }

    /// `platform_device_add_data()` of the range's `memregion_info`.
    pub(crate) fn add_memregion_info(
        &mut self,
        target_node: c_int,
        range: &HmemRange<'_>,
    ) -> Result {
        let info = range.memregion_info(target_node);
        // SAFETY: Not added yet; the device copies `info`.
        let rc = unsafe {
            bindings::platform_device_add_data(
                self.0.as_ptr(),
                ptr::from_ref(&info).cast(),
                size_of::<MemregionInfo>(),
            )
        };
        to_result(rc)
    }

    /// `platform_device_add()`. On failure the device comes back, to be reported and put.
    pub(crate) fn add(self) -> core::result::Result<RegisteredPlatformDevice, (Self, Error)> {
        // SAFETY: An allocated device, added once.
        match to_result(unsafe { bindings::platform_device_add(self.0.as_ptr()) }) {
            Ok(()) => {
                let pdev = self.0;
                core::mem::forget(self);
                Ok(RegisteredPlatformDevice(pdev))
            }
            Err(e) => Err((self, e)),
        }
    }

    fn raw_device(&self) -> *mut bindings::device {
        // SAFETY: `self.0` is an allocated platform device.
        unsafe { &raw mut (*self.0.as_ptr()).dev }
    }
}

impl Drop for NewPlatformDevice {
    fn drop(&mut self) {
        // SAFETY: Allocated and never added: platform_device_put() frees it.
        unsafe { bindings::platform_device_put(self.0.as_ptr()) };
    }
}

/// An added platform device, unregistered on drop.
pub(crate) struct RegisteredPlatformDevice(NonNull<bindings::platform_device>);

// SAFETY: Platform devices may be unregistered from any thread.
unsafe impl Send for RegisteredPlatformDevice {}

impl Drop for RegisteredPlatformDevice {
    fn drop(&mut self) {
        // SAFETY: Added by `NewPlatformDevice::add()`, unregistered once.
        unsafe { bindings::platform_device_unregister(self.0.as_ptr()) };
    }
}

/// The "hmem" driver's probe (see [`HmemDriverRegistration`]).
pub(crate) trait HmemProbe {
    /// Probe one "hmem" device.
    fn probe(dev: &HmemDevice<'_>) -> Result;
}

/// The "hmem" platform driver, registered without `kernel::platform::Adapter`.
///
/// That adapter keeps the Rust driver's data in the device's `drvdata`, but an "hmem" device's
/// `drvdata` belongs to dax: `alloc_dax_region()` stores the region there, and bus.c's
/// `dax_region/` sysfs attributes (which daxctl reads) take it back from there. hmem.c's
/// driver has neither data nor a remove callback, and neither has this one.
#[pin_data(PinnedDrop)]
pub(crate) struct HmemDriverRegistration<T: HmemProbe> {
    #[pin]
    driver: Opaque<bindings::platform_driver>,
    _probe: PhantomData<T>,
}

// SAFETY: Registered and unregistered from any thread; `&Self` gives no access.
unsafe impl<T: HmemProbe> Send for HmemDriverRegistration<T> {}
// SAFETY: `&Self` gives no access.
unsafe impl<T: HmemProbe> Sync for HmemDriverRegistration<T> {}

impl<T: HmemProbe + 'static> HmemDriverRegistration<T> {
    /// `platform_driver_register()` of a driver named `name` whose probe is `T::probe`.
    pub(crate) fn new(
        name: &'static CStr,
        module: &'static ThisModule,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            driver <- Opaque::try_ffi_init(|driver: *mut bindings::platform_driver| {
                // SAFETY: `driver` is valid for writes; an all-zero `platform_driver` is its
                // C initial state.
                unsafe {
                    driver.write(bindings::platform_driver::default());
                    (*driver).driver.name = name.as_char_ptr();
                    (*driver).probe = Some(probe_hmem::<T>);
                }
                // SAFETY: `driver` is pinned, and stays registered until `drop`.
                to_result(unsafe {
                    bindings::__platform_driver_register(
                        driver,
                        module.as_ptr(),
                        c"dax_hmem".as_char_ptr(),
                    )
                })
            }),
            _probe: PhantomData,
        })
    }
}

#[pinned_drop]
impl<T: HmemProbe> PinnedDrop for HmemDriverRegistration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: Registered by `new()`, which succeeded since `self` exists.
        unsafe { bindings::platform_driver_unregister(self.driver.get()) };
    }
}

/// The `probe` of [`HmemDriverRegistration`].
///
/// # Safety
///
/// Only as the probe callback of a registered platform driver.
unsafe extern "C" fn probe_hmem<T: HmemProbe>(pdev: *mut bindings::platform_device) -> c_int {
    // INVARIANT: The driver core probes with the device lock held, bound for the probe.
    let dev = HmemDevice {
        // SAFETY: The platform bus probes a valid device.
        pdev: unsafe { NonNull::new_unchecked(pdev) },
        _borrow: PhantomData,
    };
    match T::probe(&dev) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// An "hmem" device being probed.
///
/// # Invariants
///
/// `pdev` is a live platform device, being probed by this module's "hmem" driver, for `'a`.
pub(crate) struct HmemDevice<'a> {
    pdev: NonNull<bindings::platform_device>,
    _borrow: PhantomData<&'a bindings::platform_device>,
}

impl<'a> HmemDevice<'a> {
    /// The device, bound for the probe.
    pub(crate) fn device(&self) -> &'a device::Device<Bound> {
        // SAFETY: By the type invariant the device is live and bound for `'a`.
        unsafe { device::Device::from_raw(&raw mut (*self.pdev.as_ptr()).dev) }
    }

    /// Its id (the memregion id) and platform data.
    pub(crate) fn info(&self) -> Result<HmemDeviceInfo> {
        let pdev = self.pdev.as_ptr();
        // SAFETY: By the type invariant `pdev` is live.
        let (id, data) = unsafe { ((*pdev).id, (*pdev).dev.platform_data) };
        // hmem.c would oops here; only a device not made by an hmem_platform driver lacks it.
        if data.is_null() {
            return Err(EINVAL);
        }
        // SAFETY: "hmem" devices carry a `memregion_info` as platform data (their creator,
        // `register_hmem_device()`, adds it), which lives as long as the device.
        let memregion = unsafe { data.cast::<MemregionInfo>().read() };
        Ok(HmemDeviceInfo { id, memregion })
    }
}

/// What an "hmem" device was created with: its id (the memregion id) and platform data.
pub(crate) struct HmemDeviceInfo {
    pub(crate) id: c_int,
    pub(crate) memregion: MemregionInfo,
}

impl MemregionInfo {
    /// `range_len()`.
    pub(crate) fn range_len(&self) -> u64 {
        self.range.end - self.range.start + 1
    }
}

/// A dax region that devres frees with its parent device.
pub(crate) struct DaxRegion<'a> {
    region: NonNull<DaxRegionC>,
    _parent: PhantomData<&'a device::Device<Bound>>,
}

impl<'a> DaxRegion<'a> {
    /// `alloc_dax_region(parent, id, range, target_node, align, flags)`; `None` on failure.
    pub(crate) fn alloc(
        parent: &'a device::Device<Bound>,
        id: c_int,
        memregion: &MemregionInfo,
        align: c_uint,
        flags: c_ulong,
    ) -> Option<Self> {
        let mut range = memregion.range;
        // SAFETY: A bound parent (devres); `range` is only read.
        let region = unsafe {
            alloc_dax_region(
                raw_device(parent),
                id,
                &mut range,
                memregion.target_node,
                align,
                flags,
            )
        };
        NonNull::new(region).map(|region| Self {
            region,
            _parent: PhantomData,
        })
    }

    /// `devm_create_dev_dax()` of one device of `size` bytes in the region (id -1: the next
    /// free one), not `memmap_on_memory`.
    pub(crate) fn create_dev_dax(&self, size: u64) -> Result {
        let mut data = DevDaxData {
            dax_region: self.region.as_ptr(),
            pgmap: ptr::null_mut(),
            size,
            id: -1,
            memmap_on_memory: false,
        };
        // SAFETY: `data` is a valid `dev_dax_data` for the call; the region is live (devres
        // of the bound parent).
        from_err_ptr(unsafe { devm_create_dev_dax(&mut data) }).map(|_| ())
    }
}
