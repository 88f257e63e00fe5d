// SPDX-License-Identifier: GPL-2.0

//! The "hmem" driver's registration, its device, and the dax region it creates.

use super::{
    alloc_dax_region,
    devm_create_dev_dax,
    is_this_modules_driver,
    platform_device_named,
    raw_device,
    DaxRegionC,
    DevDaxData,
    MemregionInfo, //
    HMEM,
    HMEM_PLATFORM,
};
use core::{
    marker::PhantomData,
    ptr::{
        self,
        NonNull, //
    },
};
use kernel::{
    bindings,
    device::{
        self,
        Bound, //
    },
    error::{
        from_err_ptr,
        from_result,
        to_result, //
    },
    prelude::*,
    types::Opaque,
    ModuleMetadata,
    ThisModule, //
};

/// The "hmem" platform driver, registered without `kernel::platform::Adapter`.
///
/// That adapter keeps the Rust driver's data in the device's `drvdata`, but an "hmem" device's
/// `drvdata` belongs to dax: `alloc_dax_region()` stores the region there, and bus.c's
/// `dax_region/` sysfs attributes (which daxctl reads) take it back from there. hmem.c's
/// driver has neither data nor a remove callback, and neither has this one. Its probe is
/// [`crate::hmem::probe`].
#[pin_data(PinnedDrop)]
pub(crate) struct HmemDriverRegistration {
    #[pin]
    driver: Opaque<bindings::platform_driver>,
}

// SAFETY: Registered and unregistered from any thread; `&Self` gives no access.
unsafe impl Send for HmemDriverRegistration {}
// SAFETY: `&Self` gives no access.
unsafe impl Sync for HmemDriverRegistration {}

impl HmemDriverRegistration {
    /// `platform_driver_register()` of the "hmem" driver.
    pub(crate) fn new(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            driver <- Opaque::try_ffi_init(|driver: *mut bindings::platform_driver| {
                // SAFETY: `driver` is valid for writes; an all-zero `platform_driver` is its
                // C initial state.
                unsafe {
                    driver.write(bindings::platform_driver::default());
                    (*driver).driver.name = HMEM.as_char_ptr();
                    (*driver).probe = Some(probe_hmem);
                }
                // SAFETY: `driver` is pinned, and stays registered until `drop`.
                to_result(unsafe {
                    bindings::__platform_driver_register(
                        driver,
                        module.as_ptr(),
                        <crate::LocalModule as ModuleMetadata>::NAME.as_char_ptr(),
                    )
                })
            }),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for HmemDriverRegistration {
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
unsafe extern "C" fn probe_hmem(pdev: *mut bindings::platform_device) -> c_int {
    // INVARIANT: The driver core probes with the device lock held, bound for the probe.
    let dev = HmemDevice {
        // SAFETY: The platform bus probes a valid device.
        pdev: unsafe { NonNull::new_unchecked(pdev) },
        _borrow: PhantomData,
    };
    from_result(|| crate::hmem::probe(&dev).map(|()| 0))
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

    /// Its id (the memregion id) and platform data, if it is an "hmem" device that this
    /// module's "hmem_platform" driver made; `ENODEV` for any other device, which
    /// `driver_override` can bind here (hmem.c would read its platform data as a
    /// `memregion_info`).
    pub(crate) fn info(&self) -> Result<HmemDeviceInfo> {
        if !self.made_by_this_module() {
            return Err(ENODEV);
        }
        let pdev = self.pdev.as_ptr();
        // SAFETY: By the type invariant `pdev` is live.
        let (id, data) = unsafe { ((*pdev).id, (*pdev).dev.platform_data) };
        if data.is_null() {
            return Err(ENODEV);
        }
        // SAFETY: Checked above: this module's `register_hmem_device()` made the device and
        // added a `memregion_info` as its platform data, which lives as long as the device.
        let memregion = unsafe { data.cast::<MemregionInfo>().read() };
        Ok(HmemDeviceInfo { id, memregion })
    }

    /// Whether the device is named "hmem" and its parent is an "hmem_platform" device bound
    /// to a driver of this module: `register_hmem_device()` makes exactly these.
    fn made_by_this_module(&self) -> bool {
        if platform_device_named(self.device(), HMEM).is_none() {
            return false;
        }
        // SAFETY: By the type invariant the device is live.
        let parent = unsafe { (*self.pdev.as_ptr()).dev.parent };
        if parent.is_null() {
            return false;
        }
        // SAFETY: A device holds a reference to its parent, so the parent is live for `'a`.
        let parent: &device::Device = unsafe { device::Device::from_raw(parent) };
        let Some(parent) = platform_device_named(parent, HMEM_PLATFORM) else {
            return false;
        };
        // SAFETY: `parent` is live (above). In 7.3 only `register_hmem_device()` makes "hmem"
        // children of "hmem_platform" devices, and devres removes them (which waits for this
        // device's lock) before the driver core clears the parent's `driver`: so the driver
        // read here is bound and registered for this probe.
        let driver = unsafe { (&raw const (*parent).dev.driver).read_volatile() };
        // SAFETY: A bound device's driver is registered.
        unsafe { is_this_modules_driver(driver, HMEM_PLATFORM) }
    }
}

/// What an "hmem" device was created with: its id (the memregion id) and platform data.
pub(crate) struct HmemDeviceInfo {
    pub(crate) id: c_int,
    pub(crate) memregion: MemregionInfo,
}

impl MemregionInfo {
    /// `range_len()`, wrapping as C does (a range over all of `u64` is 0 bytes long), so
    /// that CONFIG_RUST_OVERFLOW_CHECKS cannot panic on it.
    pub(crate) fn range_len(&self) -> u64 {
        self.range
            .end
            .wrapping_sub(self.range.start)
            .wrapping_add(1)
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
