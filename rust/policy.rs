// SPDX-License-Identifier: GPL-2.0

//! Who owns a Soft Reserved range: the policy of 7.3 `hmem.c`, as plain functions.
//!
//! The inputs are facts the caller reads from the kernel (does the range intersect a CXL
//! window, has the one deferred walk run, does a committed CXL region contain the range); the
//! outputs say what to do. The walk itself runs once per `hmem_platform` device, while bound
//! (`hmem_platform.rs`). No kernel types, so this file also builds as a host test crate
//! (`scripts/tests/test_policy.py`).

/// What the `hmem_platform` probe does with one range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AtProbe {
    /// Not CXL memory: create its `hmem` device now.
    Register,
    /// CXL memory, before CXL's initial probe: decide in the deferred walk
    /// ("await CXL initial probe").
    AwaitCxl,
    /// CXL memory, after the deferred walk already ran: CXL's, for good
    /// ("deferring range to CXL"). This is why a reload of dax_hmem registers none of them.
    DeferToCxl,
}

/// What the deferred walk, after CXL's initial probe, does with one range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AfterCxlProbe {
    /// Not CXL memory: the probe registered it already.
    Skip,
    /// A committed CXL region contains it ("CXL claims resource, dropping").
    LeaveToCxl,
    /// No CXL region contains it ("CXL did not claim resource, registering").
    Register,
}

/// The probe's decision. `in_cxl_window` is false when dax_cxl is not configured, as C's
/// `IS_ENABLED(CONFIG_DEV_DAX_CXL) && region_intersects(...)`.
pub(crate) fn at_probe(in_cxl_window: bool, deferred_walk_done: bool) -> AtProbe {
    match (in_cxl_window, deferred_walk_done) {
        (false, _) => AtProbe::Register,
        (true, false) => AtProbe::AwaitCxl,
        (true, true) => AtProbe::DeferToCxl,
    }
}

/// The deferred walk's decision. `claimed_by_cxl` is only asked of ranges in a CXL window.
pub(crate) fn after_cxl_probe(
    in_cxl_window: bool,
    claimed_by_cxl: impl FnOnce() -> bool,
) -> AfterCxlProbe {
    if !in_cxl_window {
        AfterCxlProbe::Skip
    } else if claimed_by_cxl() {
        AfterCxlProbe::LeaveToCxl
    } else {
        AfterCxlProbe::Register
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_registers_ranges_outside_cxl_windows() {
        assert_eq!(at_probe(false, false), AtProbe::Register);
        assert_eq!(at_probe(false, true), AtProbe::Register);
    }

    #[test]
    fn probe_defers_cxl_ranges_until_the_walk_ran_then_leaves_them_to_cxl() {
        assert_eq!(at_probe(true, false), AtProbe::AwaitCxl);
        assert_eq!(at_probe(true, true), AtProbe::DeferToCxl);
    }

    #[test]
    fn walk_leaves_claimed_ranges_to_cxl_and_registers_the_rest() {
        assert_eq!(after_cxl_probe(true, || true), AfterCxlProbe::LeaveToCxl);
        assert_eq!(after_cxl_probe(true, || false), AfterCxlProbe::Register);
    }

    #[test]
    fn walk_skips_non_cxl_ranges_without_asking_cxl() {
        assert_eq!(
            after_cxl_probe(false, || panic!("asked CXL about a non-CXL range")),
            AfterCxlProbe::Skip
        );
    }
}
