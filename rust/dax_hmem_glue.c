// SPDX-License-Identifier: GPL-2.0
/*
 * The part of dax_hmem that Rust cannot express in 7.3. Everything else is in the crate.
 */
#include <linux/device.h>
#include <linux/export.h>
#include <linux/ioport.h>
#include <linux/moduleparam.h>
#include <linux/pci.h>
#include <linux/string.h>
#include "cxl.h"
#include "cxlmem.h"
#include "cxlpci.h"
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
 * administrator can flip it before devices are created. The others are this module's own
 * (Documentation/parameters.rst), off by default so that the module behaves as hmem.c; each
 * is read once per decision, so a write takes effect at the next one.
 */
bool dax_hmem_region_idle;
module_param_named(region_idle, dax_hmem_region_idle, bool, 0644);

bool dax_hmem_split;
module_param_named(split, dax_hmem_split, bool, 0644);
MODULE_PARM_DESC(split, "Cut Soft Reserved ranges at CXL window and committed-region boundaries (default: off, as 7.3)");

static const char *const reload_modes[] = {
	[DAX_HMEM_RELOAD_DEFER] = "defer",
	[DAX_HMEM_RELOAD_REEVALUATE] = "reevaluate",
};
int dax_hmem_reload = DAX_HMEM_RELOAD_DEFER;

static int reload_set(const char *val, const struct kernel_param *kp)
{
	int mode = sysfs_match_string(reload_modes, val);

	if (mode < 0)
		return mode;
	WRITE_ONCE(dax_hmem_reload, mode);
	return 0;
}

static int reload_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%s\n", reload_modes[READ_ONCE(dax_hmem_reload)]);
}

static const struct kernel_param_ops reload_ops = {
	.set = reload_set,
	.get = reload_get,
};
module_param_cb(reload, &reload_ops, NULL, 0644);
MODULE_PARM_DESC(reload, "On reload, CXL ranges are: defer (left to CXL, as 7.3) or reevaluate (checked for containment again)");

bool dax_hmem_summary;
module_param_named(summary, dax_hmem_summary, bool, 0644);
MODULE_PARM_DESC(summary, "Log one line per decision round: how many ranges went where (default: off)");

unsigned int dax_hmem_deferral_timeout;
module_param_named(deferral_timeout, dax_hmem_deferral_timeout, uint, 0644);
MODULE_PARM_DESC(deferral_timeout, "Seconds after which a CXL deferral still waiting warns, then again with backoff (default: 0, never)");

unsigned int dax_hmem_cxl_settle;
module_param_named(cxl_settle, dax_hmem_cxl_settle, uint, 0644);
MODULE_PARM_DESC(cxl_settle, "Decide CXL ranges once the CXL devices present have probed, waiting at most this many seconds, instead of for every probe in the system (default: 0, off: wait_for_device_probe() as 7.3)");

/*
 * The CXL-aware settle's test (cxl_settle): has every CXL device that the decision depends on
 * probed? In C because it needs CXL's type tests and region state, from cxl.h.
 *
 * device_is_bound() wants the device lock, and the region state cxl_rwsem; this test takes
 * neither, on purpose: taking a device lock here would wait behind the very probe this polls
 * for. Each read is a snapshot that can only be stale by one poll (10 ms): a bound device
 * stays bound while its probe's results stand, and a stale "not yet" costs one more poll.
 */
struct cxl_settle_walk {
	struct device *waiting; /* the first device not settled, with a reference */
	bool root_seen;
};

static bool cxl_settle_wait_for(struct cxl_settle_walk *walk, struct device *dev)
{
	if (device_is_bound(dev))
		return false;
	walk->waiting = get_device(dev);
	return true;
}

static int visit_cxl_device(struct device *dev, void *data)
{
	struct cxl_settle_walk *walk = data;

	/* Bound to cxl_mem: its endpoint port probed too (cxl_mem's probe fails otherwise). */
	if (is_cxl_memdev(dev))
		return cxl_settle_wait_for(walk, dev);
	/* The root's host is cxl_acpi's device: bound once every root decoder is added. */
	if (is_cxl_port(dev) && is_cxl_root(to_cxl_port(dev))) {
		walk->root_seen = true;
		return cxl_settle_wait_for(walk, dev->parent);
	}
	/* A region committed (by firmware, or auto-assembled) but not probed yet. */
	if (IS_ENABLED(CONFIG_CXL_REGION) && is_cxl_region(dev) &&
	    READ_ONCE(container_of(dev, struct cxl_region, dev)->params.state) >= CXL_CONFIG_COMMIT)
		return cxl_settle_wait_for(walk, dev);
	return 0;
}

/*
 * The device the CXL-aware settle still waits for, with a reference, or NULL once settled:
 * every CXL memory device on PCI is bound, every memdev is bound to cxl_mem, the CXL root's
 * decoders are enumerated, and every committed region has probed. ERR_PTR(-ENODEV) while
 * there is no CXL root yet.
 */
struct device *dax_hmem_cxl_unsettled(void)
{
	struct cxl_settle_walk walk = {};
	struct pci_dev *pdev = NULL;

	while ((pdev = pci_get_class(PCI_CLASS_MEMORY_CXL << 8 | CXL_MEMORY_PROGIF, pdev))) {
		if (!device_is_bound(&pdev->dev))
			return &pdev->dev; /* pci_get_class()'s reference, now the caller's */
	}
	if (!IS_ENABLED(CONFIG_DEV_DAX_CXL))
		return NULL;
	bus_for_each_dev(&cxl_bus_type, NULL, &walk, visit_cxl_device);
	if (walk.waiting)
		return walk.waiting;
	return walk.root_seen ? NULL : ERR_PTR(-ENODEV);
}

/*
 * Committed CXL RAM regions by their cxl_dax_region devices, whose hpa_range is fixed for
 * the device's life: the region's own range changes under cxl_rwsem, which is not exported.
 * The type is told by name because is_cxl_dax_region() is not exported either, and the
 * region's id by the device's own name ("dax_region%d"): the walk holds this device, not
 * its parent region, which may be going away.
 */
struct committed_region_walk {
	u64 start, end;
	dax_hmem_region_fn fn;
	void *arg;
};

static int visit_committed_region(struct device *dev, void *data)
{
	struct committed_region_walk *walk = data;
	struct cxl_dax_region *cxlr_dax;
	int id;

	if (!dev->type || !dev->type->name || strcmp(dev->type->name, "cxl_dax_region"))
		return 0;
	if (sscanf(dev_name(dev), "dax_region%d", &id) != 1)
		return 0;
	cxlr_dax = container_of(dev, struct cxl_dax_region, dev);
	if (cxlr_dax->hpa_range.start > walk->end || cxlr_dax->hpa_range.end < walk->start)
		return 0;
	return walk->fn(walk->arg, cxlr_dax->hpa_range.start, cxlr_dax->hpa_range.end, id);
}

int dax_hmem_for_each_committed_region(u64 start, u64 end, dax_hmem_region_fn fn, void *arg)
{
	struct committed_region_walk walk = {
		.start = start, .end = end, .fn = fn, .arg = arg,
	};

	if (!IS_ENABLED(CONFIG_DEV_DAX_CXL))
		return 0;
	return bus_for_each_dev(&cxl_bus_type, NULL, &walk, visit_committed_region);
}
#if IS_ENABLED(CONFIG_DEV_DAX_CXL)
MODULE_IMPORT_NS("CXL");
#endif

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
