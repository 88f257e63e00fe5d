// SPDX-License-Identifier: GPL-2.0
/*
 * The part of dax_hmem that Rust cannot express in 7.3. Everything else is in the crate.
 */
#include <linux/device.h>
#include <linux/export.h>
#include <linux/ioport.h>
#include <linux/moduleparam.h>
#include "bus.h"
#include "dax_hmem_glue.h"

/*
 * A Rust module cannot export a symbol (no EXPORT_SYMBOL counterpart for modules), and
 * dax_cxl links against this one. The definition is Rust's (dax_hmem_main.rs); bus.h
 * gives the prototype, as for the C driver.
 */
EXPORT_SYMBOL_FOR_MODULES(dax_hmem_flush_work, "dax_cxl");

/*
 * Rust module parameters are load-time only (no sysfs node); hmem.c's is 0644, so an
 * administrator can flip it before devices are created.
 */
bool dax_hmem_region_idle;
module_param_named(region_idle, dax_hmem_region_idle, bool, 0644);

/*
 * Rust's dev_dbg!() is compiled out without CONFIG_RUST_DEBUG_ASSERTIONS and has no dynamic
 * debug call site. These are hmem.c's dev_dbg() lines, same text, so that
 * "dax_hmem.dyndbg=+p" (or a "module dax_hmem" query) switches them on as for the C driver.
 */
void dax_hmem_dbg_await_cxl(struct device *host, const struct resource *res)
{
	dev_dbg(host, "await CXL initial probe: %pr\n", res);
}

void dax_hmem_dbg_defer_to_cxl(struct device *host, const struct resource *res)
{
	dev_dbg(host, "deferring range to CXL: %pr\n", res);
}

void dax_hmem_dbg_cxl_claims(struct device *host, const struct resource *res)
{
	dev_dbg(host, "CXL claims resource, dropping: %pr\n", res);
}

void dax_hmem_dbg_cxl_did_not_claim(struct device *host, const struct resource *res)
{
	dev_dbg(host, "CXL did not claim resource, registering: %pr\n", res);
}
