// SPDX-License-Identifier: GPL-2.0

//! The "hmem" driver's registration, its device, and the dax region it creates.

use super::{
    alloc_dax_region,
    devm_create_dev_dax,
    raw_device,
    DaxRegionC,
    DevDaxData,
    MemregionInfo, //
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
        to_result, //
    },
    prelude::*,
    types::Opaque,
    ThisModule, //
};

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
