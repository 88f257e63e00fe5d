// SPDX-License-Identifier: GPL-2.0

//! dax_hmem: direct access to "specific purpose" memory, in Rust.
//!
//! A drop-in replacement for the Linux 7.3 C driver `drivers/dax/hmem/hmem.c`, deferral of
//! Soft Reserved ranges to CXL included:
//!
//! - [`hmem_platform`]: the "hmem_platform" driver, which decides who owns each range;
//! - [`hmem`]: the "hmem" driver, one dax region per range it keeps;
//! - [`policy`]: those decisions as plain functions;
//! - [`disposition`]: the report of each range's decision (debugfs `dax_hmem/disposition`);
//! - [`ffi`]: every raw call into C.
//!
//! With default parameters it decides as hmem.c does; `split`, `reload`, `summary`,
//! `deferral_timeout` and `cxl_settle` opt in to more (`Documentation/parameters.rst`).

mod disposition;
mod ffi;
mod hmem;
mod hmem_platform;
mod policy;

use disposition::DispositionReport;
use ffi::{
    DaxHmemWorkqueue,
    HmemDriverRegistration,
    HMEM_PLATFORM, //
};
use hmem_platform::HmemPlatformDriver;
use kernel::{
    driver,
    platform,
    prelude::*,
    InPlaceModule, //
};

#[pin_data]
struct DaxHmemModule {
    // Dropped in declaration order, as hmem.c's dax_hmem_exit(): both drivers, then the queue,
    // whose destruction drains the deferred work; then the report, which no walk writes now.
    #[pin]
    _hmem: HmemDriverRegistration,
    #[pin]
    _hmem_platform: driver::Registration<platform::Adapter<HmemPlatformDriver>>,
    _wq: DaxHmemWorkqueue,
    _report: DispositionReport,
}

impl InPlaceModule for DaxHmemModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // Ensure that cxl_acpi and cxl_pci have a chance to kick off CXL topology discovery at
        // least once before scanning the iomem resource tree for IORES_DESC_CXL resources.
        if cfg!(CONFIG_DEV_DAX_CXL) {
            ffi::request_module(c"cxl_acpi");
            ffi::request_module(c"cxl_pci");
        }

        // Initialised in the order written; on failure the initialised fields are dropped.
        try_pin_init!(Self {
            _report: DispositionReport::new()?,
            _wq: DaxHmemWorkqueue::alloc()?,
            _hmem_platform <- driver::Registration::new(HMEM_PLATFORM, module),
            _hmem <- HmemDriverRegistration::new(module),
        })
    }
}

/// Wait for the deferred decisions. dax_cxl calls this before it registers its driver, so that
/// CXL regions are only driven after dax_hmem decided. Exported to dax_cxl only, by
/// `dax_hmem_glue.c`.
#[no_mangle]
extern "C" fn dax_hmem_flush_work() {
    DaxHmemWorkqueue::flush();
}

// The policy, names and texts are those of hmem.c, whose author this keeps.
module! {
    type: DaxHmemModule,
    name: "dax_hmem",
    authors: ["Intel Corporation"],
    description: "HMEM DAX: direct access to 'specific purpose' memory",
    license: "GPL v2",
    alias: ["platform:hmem*", "platform:hmem_platform*"],
}
