// SPDX-License-Identifier: GPL-2.0

//! Where CXL memory lies, for `split=1` and the disposition report: the CXL windows in iomem,
//! and the committed CXL RAM regions on the CXL bus.

use super::dax_hmem_for_each_committed_region;
use crate::policy::Span;
use core::ffi::c_void;
use kernel::{
    bindings,
    prelude::*, //
};

/// A committed CXL RAM region: its HPA range, and its id (`region<id>`).
#[derive(Clone, Copy)]
pub(crate) struct CommittedRegion {
    pub(crate) span: Span,
    pub(crate) id: c_int,
}

/// What a walk collects, and whether it ran out of memory.
struct Collected<T> {
    items: KVec<T>,
    result: Result,
}

impl<T> Collected<T> {
    fn new() -> Self {
        Self {
            items: KVec::new(),
            result: Ok(()),
        }
    }

    /// Keep `item`; a non-zero return stops the walk.
    fn push(&mut self, item: T) -> c_int {
        match self.items.push(item, GFP_KERNEL) {
            Ok(()) => 0,
            Err(_) => {
                self.result = Err(ENOMEM);
                ENOMEM.to_errno()
            }
        }
    }

    fn finish(self) -> Result<KVec<T>> {
        self.result.map(|()| self.items)
    }
}

/// The CXL windows (`IORES_DESC_CXL` resources in iomem) over `span`, each clipped to it.
pub(crate) fn cxl_windows(span: Span) -> Result<KVec<Span>> {
    /// # Safety
    ///
    /// Only as the callback of the walk below.
    unsafe extern "C" fn visit(res: *mut bindings::resource, arg: *mut c_void) -> c_int {
        // SAFETY: `arg` is the `Collected` below, alive and not otherwise borrowed during the
        // walk; `res` is the walk's own copy of a resource, valid for this call.
        let (windows, res) = unsafe { (&mut *arg.cast::<Collected<Span>>(), &*res) };
        windows.push(Span {
            start: res.start,
            end: res.end,
        })
    }

    let mut windows = Collected::new();
    // SAFETY: `visit` meets the callback's contract with `arg` our `Collected<Span>`. The walk
    // returns -EINVAL when it finds nothing, which is no error here.
    unsafe {
        bindings::walk_iomem_res_desc(
            // CAST: bindgen types these enumerators `u32`; C passes them as `unsigned long`.
            bindings::IORES_DESC_CXL as c_ulong,
            bindings::IORESOURCE_MEM as c_ulong,
            span.start,
            span.end,
            (&raw mut windows).cast(),
            Some(visit),
        )
    };
    windows.finish()
}

/// The committed CXL RAM regions over `span` (`dax_hmem_glue.c`).
pub(crate) fn committed_regions(span: Span) -> Result<KVec<CommittedRegion>> {
    /// # Safety
    ///
    /// Only as the callback of the walk below.
    unsafe extern "C" fn visit(arg: *mut c_void, start: u64, end: u64, id: c_int) -> c_int {
        // SAFETY: `arg` is the `Collected` below, alive and not otherwise borrowed during the
        // walk.
        let regions = unsafe { &mut *arg.cast::<Collected<CommittedRegion>>() };
        regions.push(CommittedRegion {
            span: Span { start, end },
            id,
        })
    }

    let mut regions = Collected::new();
    // SAFETY: `visit` meets `dax_hmem_region_fn` with `arg` our `Collected<CommittedRegion>`.
    unsafe {
        dax_hmem_for_each_committed_region(
            span.start,
            span.end,
            Some(visit),
            (&raw mut regions).cast(),
        )
    };
    regions.finish()
}
