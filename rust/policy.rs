// SPDX-License-Identifier: GPL-2.0

//! Who owns a Soft Reserved range: the policy of 7.3 `hmem.c`, as plain functions, and the
//! opt-in changes of this module's parameters (`Documentation/parameters.rst`).
//!
//! The inputs are facts the caller reads from the kernel (does the range intersect a CXL
//! window, has the one deferred walk run, does a committed CXL region contain the range); the
//! outputs say what to do. The walk itself runs once per `hmem_platform` device, while bound
//! (`hmem_platform.rs`). No kernel types, so this file also builds as a host test crate
//! (`scripts/tests/test_module.py`).

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
    /// CXL memory, after the deferred walk already ran, with `reload=reevaluate`: decide now,
    /// as the deferred walk would have.
    Reevaluate,
}

/// What a reprobe of `hmem_platform` (a reload of dax_hmem) does with CXL memory: the
/// `reload` module parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReloadMode {
    /// 7.3: leave every CXL-intersecting range to CXL, claimed or not.
    Defer,
    /// Check containment again, as the deferred walk does.
    Reevaluate,
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

/// A range of physical addresses, both ends inclusive, as `struct range`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u64,
    pub(crate) end: u64,
}

impl Span {
    pub(crate) fn intersects(&self, other: &Span) -> bool {
        self.start <= other.end && other.start <= self.end
    }

    pub(crate) fn contains(&self, other: &Span) -> bool {
        self.start <= other.start && other.end <= self.end
    }
}

/// The probe's decision. `in_cxl_window` is false when dax_cxl is not configured, as C's
/// `IS_ENABLED(CONFIG_DEV_DAX_CXL) && region_intersects(...)`.
pub(crate) fn at_probe(
    in_cxl_window: bool,
    deferred_walk_done: bool,
    reload: ReloadMode,
) -> AtProbe {
    match (in_cxl_window, deferred_walk_done, reload) {
        (false, _, _) => AtProbe::Register,
        (true, false, _) => AtProbe::AwaitCxl,
        (true, true, ReloadMode::Defer) => AtProbe::DeferToCxl,
        (true, true, ReloadMode::Reevaluate) => AtProbe::Reevaluate,
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

/// The decision for one piece of a CXL range cut at CXL boundaries (`split=1`). Unlike a
/// whole range, a piece outside every window was not registered at probe: it is hmem's too.
pub(crate) fn piece_after_cxl_probe(
    in_cxl_window: bool,
    claimed_by_cxl: impl FnOnce() -> bool,
) -> AfterCxlProbe {
    match after_cxl_probe(in_cxl_window, claimed_by_cxl) {
        AfterCxlProbe::Skip => AfterCxlProbe::Register,
        decision => decision,
    }
}

/// Cut `range` where a CXL boundary falls inside it, and hand each piece to `piece`, in
/// address order. `bounds` are the CXL windows and committed regions that intersect the range,
/// in any order. Each piece then lies in one window or in none, and in one committed region or
/// in none, so that one dax region can hold it and kmem can add it.
pub(crate) fn for_each_piece<E>(
    range: Span,
    bounds: &[Span],
    mut piece: impl FnMut(Span) -> Result<(), E>,
) -> Result<(), E> {
    // A cut at `c` ends a piece at `c - 1`. Bounds are few (the windows and regions under one
    // range), so the next cut is found by a scan, without sorting or allocating.
    let next_cut = |after: u64| {
        bounds
            .iter()
            .flat_map(|bound| [Some(bound.start), bound.end.checked_add(1)])
            .flatten()
            .filter(|&cut| cut > after && cut <= range.end)
            .min()
    };
    let mut start = range.start;
    while let Some(cut) = next_cut(start) {
        piece(Span {
            start,
            end: cut - 1,
        })?;
        start = cut;
    }
    piece(Span {
        start,
        end: range.end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(range: (u64, u64), bounds: &[(u64, u64)]) -> Vec<(u64, u64)> {
        let bounds: Vec<Span> = bounds
            .iter()
            .map(|&(start, end)| Span { start, end })
            .collect();
        let mut out = Vec::new();
        let range = Span {
            start: range.0,
            end: range.1,
        };
        for_each_piece::<()>(range, &bounds, |p| {
            out.push((p.start, p.end));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn probe_registers_ranges_outside_cxl_windows() {
        for reload in [ReloadMode::Defer, ReloadMode::Reevaluate] {
            assert_eq!(at_probe(false, false, reload), AtProbe::Register);
            assert_eq!(at_probe(false, true, reload), AtProbe::Register);
        }
    }

    #[test]
    fn probe_defers_cxl_ranges_until_the_walk_ran_then_leaves_them_to_cxl() {
        assert_eq!(at_probe(true, false, ReloadMode::Defer), AtProbe::AwaitCxl);
        assert_eq!(at_probe(true, true, ReloadMode::Defer), AtProbe::DeferToCxl);
    }

    #[test]
    fn reevaluating_reload_decides_again_only_after_the_walk_ran() {
        assert_eq!(
            at_probe(true, false, ReloadMode::Reevaluate),
            AtProbe::AwaitCxl
        );
        assert_eq!(
            at_probe(true, true, ReloadMode::Reevaluate),
            AtProbe::Reevaluate
        );
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

    #[test]
    fn pieces_outside_windows_are_registered_without_asking_cxl() {
        assert_eq!(
            piece_after_cxl_probe(false, || panic!("asked CXL about a non-CXL piece")),
            AfterCxlProbe::Register
        );
        assert_eq!(
            piece_after_cxl_probe(true, || true),
            AfterCxlProbe::LeaveToCxl
        );
        assert_eq!(
            piece_after_cxl_probe(true, || false),
            AfterCxlProbe::Register
        );
    }

    #[test]
    fn a_range_inside_one_bound_is_one_piece() {
        assert_eq!(pieces((0x100, 0x1ff), &[(0, 0xfff)]), [(0x100, 0x1ff)]);
        assert_eq!(pieces((0x100, 0x1ff), &[(0x100, 0x1ff)]), [(0x100, 0x1ff)]);
        assert_eq!(pieces((0x100, 0x1ff), &[]), [(0x100, 0x1ff)]);
    }

    #[test]
    fn a_range_over_two_windows_is_cut_at_their_edge() {
        // n-sr-spans-windows: the end of window 0 and the start of window 1.
        assert_eq!(
            pieces((0x300, 0x4ff), &[(0x400, 0x7ff), (0, 0x3ff)]),
            [(0x300, 0x3ff), (0x400, 0x4ff)]
        );
    }

    #[test]
    fn a_range_over_a_window_edge_is_cut_at_the_edge() {
        assert_eq!(
            pieces((0x300, 0x4ff), &[(0x400, 0x7ff)]),
            [(0x300, 0x3ff), (0x400, 0x4ff)]
        );
        assert_eq!(
            pieces((0x300, 0x4ff), &[(0, 0x3ff)]),
            [(0x300, 0x3ff), (0x400, 0x4ff)]
        );
    }

    #[test]
    fn a_region_inside_a_window_cuts_free_space_on_both_sides() {
        // A range over a committed region, with free window space on either side.
        assert_eq!(
            pieces((0x100, 0x4ff), &[(0, 0xfff), (0x200, 0x2ff)]),
            [(0x100, 0x1ff), (0x200, 0x2ff), (0x300, 0x4ff)]
        );
        // j-sr-larger-than-region: the region at the start of the range.
        assert_eq!(
            pieces((0x200, 0x3ff), &[(0, 0xfff), (0x200, 0x2ff)]),
            [(0x200, 0x2ff), (0x300, 0x3ff)]
        );
    }

    #[test]
    fn nested_and_repeated_bounds_cut_once_in_address_order() {
        assert_eq!(
            pieces(
                (0, 0xfff),
                &[
                    (0x800, 0xfff),
                    (0, 0x7ff),
                    (0x100, 0x1ff),
                    (0x100, 0x1ff),
                    (0x900, 0x9ff)
                ]
            ),
            [
                (0, 0xff),
                (0x100, 0x1ff),
                (0x200, 0x7ff),
                (0x800, 0x8ff),
                (0x900, 0x9ff),
                (0xa00, 0xfff)
            ]
        );
    }

    #[test]
    fn a_bound_at_the_top_of_the_address_space_does_not_wrap() {
        assert_eq!(
            pieces((u64::MAX - 0xff, u64::MAX), &[(u64::MAX - 0x7f, u64::MAX)]),
            [
                (u64::MAX - 0xff, u64::MAX - 0x80),
                (u64::MAX - 0x7f, u64::MAX)
            ]
        );
    }

    #[test]
    fn spans_intersect_and_contain_inclusively() {
        let a = Span {
            start: 0,
            end: 0xff,
        };
        assert!(a.intersects(&Span {
            start: 0xff,
            end: 0x1ff
        }));
        assert!(!a.intersects(&Span {
            start: 0x100,
            end: 0x1ff
        }));
        assert!(a.contains(&Span {
            start: 0,
            end: 0xff
        }));
        assert!(!a.contains(&Span {
            start: 0,
            end: 0x100
        }));
    }
}
