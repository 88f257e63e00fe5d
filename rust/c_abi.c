// SPDX-License-Identifier: GPL-2.0
/*
 * Never linked: compiled to assembly only, and Kbuild turns each DEFINE() into a Rust
 * constant in c_abi_generated.rs (the asm-offsets technique). ffi.rs checks its #[repr(C)]
 * mirrors against these values in const context, so a layout drift in the kernel's headers
 * fails the build instead of corrupting memory. The macro values are here because bindgen
 * does not see bus.h, and cannot expand PMD_SIZE.
 */
#include <linux/kbuild.h>
#include <linux/memregion.h>
#include <linux/pgtable.h>
#include "bus.h"
#include "dax_hmem_glue.h"

int main(void)
{
	DEFINE(HMEM_PLATFORM_DEVICE_SIZE, sizeof(struct hmem_platform_device));
	OFFSET(HMEM_PLATFORM_DEVICE_PDEV, hmem_platform_device, pdev);
	OFFSET(HMEM_PLATFORM_DEVICE_WORK, hmem_platform_device, work);
	OFFSET(HMEM_PLATFORM_DEVICE_DID_PROBE, hmem_platform_device, did_probe);
	DEFINE(HMEM_PLATFORM_DEVICE_DID_PROBE_SIZE,
	       sizeof(((struct hmem_platform_device *)0)->did_probe));

	DEFINE(MEMREGION_INFO_SIZE, sizeof(struct memregion_info));
	OFFSET(MEMREGION_INFO_TARGET_NODE, memregion_info, target_node);
	OFFSET(MEMREGION_INFO_RANGE, memregion_info, range);

	DEFINE(DEV_DAX_DATA_SIZE, sizeof(struct dev_dax_data));
	OFFSET(DEV_DAX_DATA_DAX_REGION, dev_dax_data, dax_region);
	OFFSET(DEV_DAX_DATA_PGMAP, dev_dax_data, pgmap);
	OFFSET(DEV_DAX_DATA_SIZE_FIELD, dev_dax_data, size);
	OFFSET(DEV_DAX_DATA_ID, dev_dax_data, id);
	OFFSET(DEV_DAX_DATA_MEMMAP_ON_MEMORY, dev_dax_data, memmap_on_memory);

	DEFINE(IORESOURCE_DAX_KMEM_VALUE, IORESOURCE_DAX_KMEM);
	DEFINE(PMD_SIZE_VALUE, PMD_SIZE);
	DEFINE(DAX_HMEM_RELOAD_REEVALUATE_VALUE, DAX_HMEM_RELOAD_REEVALUATE);
	return 0;
}
