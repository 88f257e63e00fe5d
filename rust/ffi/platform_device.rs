// SPDX-License-Identifier: GPL-2.0

//! The "hmem" platform devices that the "hmem_platform" driver creates, and their ids.

use super::{
    memregion_alloc,
    memregion_free,
    numa_map_to_online_node,
    raw_device,
    HmemRange,
    MemregionInfo, //
};
use core::{
    mem::size_of,
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
    error::to_result,
    prelude::*,
};

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
    pub(crate) fn add_memregion_info(&mut self, target_node: c_int, range: &HmemRange) -> Result {
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

    /// `dev_name()`, if the device has a name: `platform_device_add()` names it, and may
    /// fail before it does.
    pub(super) fn name(&self) -> Option<&CStr> {
        // SAFETY: An allocated device has an initialised `dev`.
        let name = unsafe { bindings::dev_name(self.raw_device()) };
        // SAFETY: A device's name is a C string that lives until it is renamed or released;
        // this one is neither while `self` is borrowed.
        (!name.is_null()).then(|| unsafe { CStr::from_char_ptr(name) })
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
