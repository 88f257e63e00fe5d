// SPDX-License-Identifier: GPL-2.0

//! All of dax_hmem's raw FFI, behind small typed wrappers: the C declarations that `bindings`
//! lacks (`drivers/dax/bus.h`, `<linux/dax.h>`, `<linux/memregion.h>`, the CXL core and our C
//! glue), `#[repr(C)]` mirrors checked against the kernel's headers at build time, and the
//! workqueue, device-lock and platform-device calls the `kernel` crate has no API for.
//!
//! The rest of the crate has no `unsafe`. This file holds the declarations and mirrors; its
//! submodules the wrappers, one C object each.

use crate::policy::ReloadMode;
use core::{
    ffi::c_void,
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
    device,
    platform,
    prelude::*,
    sync::aref::ARef,
    ModuleMetadata, //
};

mod cxl;
mod hmem_driver;
mod hmem_platform_device;
mod platform_device;
mod records;
mod watchdog;
mod workqueue;

pub(crate) use cxl::{
    committed_regions,
    cxl_windows, //
};
pub(crate) use hmem_driver::{
    DaxRegion,
    HmemDevice,
    HmemDriverRegistration, //
};
pub(crate) use hmem_platform_device::{
    AllocationFailure,
    DecisionLog,
    HmemPlatform,
    HmemRange,
    QueuedHmemPlatform,
    RangeVisitor, //
};
pub(crate) use platform_device::{
    MemregionId,
    NewPlatformDevice, //
};
pub(crate) use records::{
    push_staged,
    take_staged,
    with_stage,
    RecordsLock, //
};
pub(crate) use watchdog::DeferralWatchdog;
pub(crate) use workqueue::DaxHmemWorkqueue;

/// Sizes, offsets and macro values read from the kernel's headers at build time: Kbuild compiles
/// `c_abi.c` to assembly and turns each `DEFINE()` into a constant here.
// rustc 1.85 (Debian's kernel toolchain) counts a constant that only a `const _` assertion
// reads as dead code; newer rustc does not.
#[allow(dead_code)]
mod c_abi {
    include!("c_abi_generated.rs");
}

/// `struct hmem_platform_device` (bus.h). There are two instances, both static and both
/// named "hmem_platform": built-in `device.c`'s, whose `work` and `did_probe` outlive this
/// module (that is what makes the latch survive a reload), and cxl_test's `hmem_test_device`,
/// which lives in cxl_test.ko. cxl_test unregisters it on unload, but a deferred work still
/// queued then would outlive it, in hmem.c as here; that test device is the lab's to keep
/// loaded while dax_hmem is.
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

/// The name of the device (device.c) that stands for all Soft Reserved ranges, and of the
/// driver that binds it.
pub(crate) const HMEM_PLATFORM: &CStr = c"hmem_platform";

/// The name of the devices, one per range, that "hmem_platform" creates, and of their driver.
pub(crate) const HMEM: &CStr = c"hmem";

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
    static dax_hmem_split: bool;
    static dax_hmem_reload: c_int;
    static dax_hmem_summary: bool;
    static dax_hmem_deferral_timeout: c_uint;
    static dax_hmem_cxl_settle: c_uint;
    fn dax_hmem_cxl_unsettled() -> *mut bindings::device;
    fn dax_hmem_for_each_committed_region(
        start: u64,
        end: u64,
        f: Option<unsafe extern "C" fn(arg: *mut c_void, start: u64, end: u64, id: c_int) -> c_int>,
        arg: *mut c_void,
    ) -> c_int;
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

/// The platform device `dev`, if it is one and is named `name`: `pdev->name`, which the
/// platform bus matches drivers on, unless `driver_override` bypasses it.
fn platform_device_named<Ctx: device::DeviceContext>(
    dev: &device::Device<Ctx>,
    name: &CStr,
) -> Option<*mut bindings::platform_device> {
    let pdev: &platform::Device<Ctx> = dev.try_into().ok()?;
    let pdev = raw_platform_device(pdev);
    // SAFETY: `pdev` is live while `dev` is borrowed.
    let pdev_name = unsafe { (*pdev).name };
    if pdev_name.is_null() {
        return None;
    }
    // SAFETY: A platform device's name is a C string that lives as long as the device.
    let named = unsafe { CStr::from_char_ptr(pdev_name) == name };
    named.then_some(pdev)
}

/// Whether `driver` is one of this module's drivers named `name`.
///
/// # Safety
///
/// `driver` is NULL or a registered driver.
unsafe fn is_this_modules_driver(driver: *const bindings::device_driver, name: &CStr) -> bool {
    if driver.is_null() {
        return false;
    }
    // SAFETY: A registered driver, by the safety requirements.
    let (owner, driver_name) = unsafe { ((*driver).owner, (*driver).name) };
    if owner != <crate::LocalModule as ModuleMetadata>::THIS_MODULE.as_ptr()
        || driver_name.is_null()
    {
        return false;
    }
    // SAFETY: A registered driver's name is a C string that lives as long as the driver.
    unsafe { CStr::from_char_ptr(driver_name) == name }
}

/// The raw `struct platform_device` behind a Rust platform device reference.
fn raw_platform_device<Ctx: device::DeviceContext>(
    pdev: &platform::Device<Ctx>,
) -> *mut bindings::platform_device {
    // CAST: `platform::Device` is `#[repr(transparent)]` over
    // `Opaque<bindings::platform_device>`; its own `as_raw()` is private to the `kernel` crate.
    ptr::from_ref(pdev).cast_mut().cast()
}

/// `READ_ONCE()` of a module parameter in dax_hmem_glue.c, which sysfs writes at any time.
macro_rules! read_parameter {
    ($param:ident) => {
        // SAFETY: A parameter defined in dax_hmem_glue.c with this type; read once, volatile,
        // as READ_ONCE() would.
        unsafe { ptr::addr_of!($param).read_volatile() }
    };
}

/// The `region_idle` module parameter (0644, in `dax_hmem_glue.c`).
pub(crate) fn region_idle() -> bool {
    read_parameter!(dax_hmem_region_idle)
}

/// The `split` module parameter: cut Soft Reserved ranges at CXL boundaries.
pub(crate) fn split() -> bool {
    read_parameter!(dax_hmem_split)
}

/// The `reload` module parameter.
pub(crate) fn reload() -> ReloadMode {
    // `enum dax_hmem_reload_mode`: the parameter's setter stores only its values.
    let mode = read_parameter!(dax_hmem_reload);
    if mode == c_abi::DAX_HMEM_RELOAD_REEVALUATE_VALUE as c_int {
        ReloadMode::Reevaluate
    } else {
        ReloadMode::Defer
    }
}

/// The `summary` module parameter: log one line per decision round.
pub(crate) fn summary() -> bool {
    read_parameter!(dax_hmem_summary)
}

/// The `deferral_timeout` module parameter, in seconds; 0 is off.
pub(crate) fn deferral_timeout() -> c_uint {
    read_parameter!(dax_hmem_deferral_timeout)
}

/// The `cxl_settle` module parameter, in seconds; 0 is off (7.3's `wait_for_device_probe()`).
pub(crate) fn cxl_settle() -> c_uint {
    read_parameter!(dax_hmem_cxl_settle)
}

/// What the CXL-aware settle still waits for (`dax_hmem_cxl_unsettled()` in the glue).
pub(crate) enum CxlSettle {
    /// The CXL devices present have probed: decide now.
    Settled,
    /// No CXL root (cxl_acpi's) yet.
    NoCxlRoot,
    /// This device has not probed yet.
    WaitingFor(ARef<device::Device>),
}

/// Has every CXL device that the decision depends on probed?
pub(crate) fn cxl_settle_state() -> CxlSettle {
    // SAFETY: It takes no arguments and no locks (it reads binding and region state racily,
    // by design: see the glue); it returns NULL, ERR_PTR(-ENODEV), or a device with a
    // reference taken for the caller.
    let dev = unsafe { dax_hmem_cxl_unsettled() };
    match kernel::error::from_err_ptr(dev).map(NonNull::new) {
        Ok(None) => CxlSettle::Settled,
        Err(_) => CxlSettle::NoCxlRoot,
        // SAFETY: A live device whose reference is ours to drop; `device::Device` is
        // `#[repr(transparent)]` over `struct device`.
        Ok(Some(dev)) => CxlSettle::WaitingFor(unsafe { ARef::from_raw(dev.cast()) }),
    }
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

/// `phys_to_target_node()`: the node firmware gives `addr` (its SRAT entry, or the node
/// `cxl_acpi` gave its CXL window), or `None` where it gives none.
#[cfg(CONFIG_NUMA)]
pub(crate) fn phys_to_target_node(addr: u64) -> Option<c_int> {
    // SAFETY: No preconditions: a lookup in the NUMA memblk tables, for any address.
    let nid = unsafe { bindings::phys_to_target_node(addr) };
    (nid != bindings::NUMA_NO_NODE).then_some(nid)
}

/// Without NUMA, every address is node 0's (as the C header's inline says).
#[cfg(not(CONFIG_NUMA))]
pub(crate) fn phys_to_target_node(_addr: u64) -> Option<c_int> {
    Some(0)
}

/// `numa_map_to_online_node()`.
#[cfg(CONFIG_NUMA)]
fn numa_map_to_online_node(nid: c_int) -> c_int {
    // SAFETY: No preconditions.
    unsafe { bindings::numa_nearest_node(nid, bindings::node_states_N_ONLINE) }
}
