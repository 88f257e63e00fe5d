// SPDX-License-Identifier: GPL-2.0

//! The "hmem" driver: turns one Soft Reserved range into a dax region with one dax device
//! (hmem.c's `dax_hmem_probe()`).

use crate::ffi::{
    self,
    DaxRegion,
    HmemDevice, //
};
use kernel::prelude::*;

/// Probe one "hmem" device (the driver is registered by [`ffi::HmemDriverRegistration`]).
pub(crate) fn probe(dev: &HmemDevice<'_>) -> Result {
    let info = dev.info().inspect_err(|_| {
        dev_err!(
            dev.device(),
            "not an hmem device of hmem_platform, refusing to bind\n"
        );
    })?;

    // region_idle: an administrative agent wants to partition the range before devices are
    // created, so do not hand them to dax_kmem by default.
    let (flags, size) = if ffi::region_idle() {
        (0, 0)
    } else {
        (ffi::IORESOURCE_DAX_KMEM, info.memregion.range_len())
    };

    let region = DaxRegion::alloc(dev.device(), info.id, &info.memregion, ffi::PMD_SIZE, flags)
        .ok_or(ENOMEM)?;
    region.create_dev_dax(size)
}
