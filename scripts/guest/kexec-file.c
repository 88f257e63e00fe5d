// SPDX-License-Identifier: GPL-2.0
/*
 * kexec-file KERNEL INITRD CMDLINE: load a kernel with kexec_file_load(2) and jump to it.
 *
 * Why not kexec-tools: bookworm's kexec binary pulls the libxen* libraries into the guest.
 * This is all the two-stage (BIOS-like committed decoders) topologies need.
 */
#include <fcntl.h>
#include <linux/reboot.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int kernel_fd, initrd_fd;

	if (argc != 4) {
		fprintf(stderr, "usage: kexec-file KERNEL INITRD CMDLINE\n");
		return 2;
	}
	kernel_fd = open(argv[1], O_RDONLY);
	initrd_fd = open(argv[2], O_RDONLY);
	if (kernel_fd < 0 || initrd_fd < 0) {
		perror("kexec-file: open");
		return 1;
	}
	if (syscall(SYS_kexec_file_load, kernel_fd, initrd_fd,
		    strlen(argv[3]) + 1, argv[3], 0UL)) {
		perror("kexec-file: kexec_file_load");
		return 1;
	}
	sync();
	syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
		LINUX_REBOOT_CMD_KEXEC, NULL);
	perror("kexec-file: reboot");
	return 1;
}
