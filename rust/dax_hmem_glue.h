/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C half of dax_hmem: what the Rust half calls in dax_hmem_glue.c. Mirrored by the
 * extern block in ffi.rs.
 */
#ifndef DAX_HMEM_GLUE_H
#define DAX_HMEM_GLUE_H

#include <linux/types.h>

struct device;
struct resource;

enum dax_hmem_reload_mode {
	DAX_HMEM_RELOAD_DEFER,
	DAX_HMEM_RELOAD_REEVALUATE,
};

extern bool dax_hmem_region_idle;
extern bool dax_hmem_split;
extern int dax_hmem_reload;
extern bool dax_hmem_summary;
extern unsigned int dax_hmem_deferral_timeout;
extern unsigned int dax_hmem_cxl_settle;

struct device *dax_hmem_cxl_unsettled(void);

/* Called with each committed CXL RAM region over [start, end]; non-zero stops the walk. */
typedef int (*dax_hmem_region_fn)(void *arg, u64 start, u64 end, int region_id);
int dax_hmem_for_each_committed_region(u64 start, u64 end, dax_hmem_region_fn fn, void *arg);

void dax_hmem_dbg_await_cxl(struct device *host, const struct resource *res);
void dax_hmem_dbg_defer_to_cxl(struct device *host, const struct resource *res);
void dax_hmem_dbg_cxl_claims(struct device *host, const struct resource *res);
void dax_hmem_dbg_cxl_did_not_claim(struct device *host, const struct resource *res);

#endif /* DAX_HMEM_GLUE_H */
