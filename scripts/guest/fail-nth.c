// SPDX-License-Identifier: GPL-2.0
/*
 * fail-nth N insmod FILE       load FILE with finit_module()
 * fail-nth N write FILE TEXT   write TEXT to FILE (a sysfs bind, say)
 *
 * Fails the Nth allocation of this task that the fault-injection filters admit (failslab
 * and fail_page_alloc: /proc/self/fail-nth), while the task does one action, then prints
 * "injected=I errno=E": I is 1 when the fault fired, E the action's errno (0: success).
 * The action must be this task's own: fail-nth is per task and not inherited, so a shell
 * could not arm it for a child.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
	char nth[32];
	int fd, rc, err;

	if (argc < 4 || (strcmp(argv[2], "insmod") && strcmp(argv[2], "write")) ||
	    (!strcmp(argv[2], "write") && argc != 5)) {
		fprintf(stderr, "usage: fail-nth N insmod FILE | fail-nth N write FILE TEXT\n");
		return 2;
	}
	if (write_file("/proc/self/fail-nth", argv[1])) {
		perror("fail-nth: /proc/self/fail-nth");
		return 2;
	}
	if (!strcmp(argv[2], "insmod")) {
		fd = open(argv[3], O_RDONLY | O_CLOEXEC);
		rc = fd < 0 ? -1 : (int)syscall(SYS_finit_module, fd, "", 0);
	} else {
		rc = write_file(argv[3], argv[4]);
	}
	err = rc ? errno : 0;
	fd = open("/proc/self/fail-nth", O_RDONLY);
	memset(nth, 0, sizeof(nth));
	if (fd < 0 || read(fd, nth, sizeof(nth) - 1) < 0) {
		perror("fail-nth: read back");
		return 2;
	}
	close(fd);
	/* 0: the fault was injected; N > 0: N more admitted allocations were needed. */
	printf("injected=%d errno=%d\n", atoi(nth) == 0, err);
	/* Disarm, so that exit's own allocations are not failed. */
	write_file("/proc/self/fail-nth", "0");
	return 0;
}
