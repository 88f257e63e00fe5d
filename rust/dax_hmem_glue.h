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

extern bool dax_hmem_region_idle;

void dax_hmem_dbg_await_cxl(struct device *host, const struct resource *res);
void dax_hmem_dbg_defer_to_cxl(struct device *host, const struct resource *res);
void dax_hmem_dbg_cxl_claims(struct device *host, const struct resource *res);
void dax_hmem_dbg_cxl_did_not_claim(struct device *host, const struct resource *res);

#endif /* DAX_HMEM_GLUE_H */
