// SPDX-License-Identifier: GPL-2.0
/*
 * lab-uevent: the guest's stand-in for udev's module autoload. It listens on the uevent
 * netlink socket and, for every "add" uevent that carries a MODALIAS, runs
 * "/sbin/modprobe -b -q MODALIAS", as udev's 80-drivers.rules does with its kmod builtin.
 *
 * Why not busybox mdev as the kernel's hotplug helper: it forks a helper, and the helper a
 * modprobe, for every uevent. cxl_test adds about 200 CXL devices, whose uevents cost about
 * a minute of TCG time that way, while udev, a daemon, answers an alias whose modules are
 * loaded without a new process. This helper does the same: an alias already handled is not
 * handled again until a module comes or goes (a "module" uevent), since until then modprobe
 * would find the same modules in the same state and do nothing. Where it differs from udev:
 * a module whose init failed sends no module uevent (the kernel announces a module only once
 * its init succeeded), so its alias is tried again only after some other module comes or
 * goes, where udev would try on the alias's next uevent.
 *
 * Usage: lab-uevent PIDFILE SEQNUMFILE. It writes its pid to PIDFILE once it listens, so
 * that the caller can coldplug without losing uevents in between. Whenever it has no uevent
 * left to read, it writes the SEQNUM of the last one it handled to SEQNUMFILE, so that
 * lab_settle can tell a uevent still queued (its number, in /sys/kernel/uevent_seqnum, is
 * higher) from none; modprobe runs by vfork, so that a uevent counted as handled already
 * shows its modprobe to pidof.
 */
#include <errno.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ALIASES 4096

static char *handled[MAX_ALIASES]; /* aliases run since the last module uevent */
static int handled_count;

static int already_handled(const char *alias)
{
	for (int i = 0; i < handled_count; i++)
		if (!strcmp(handled[i], alias))
			return 1;
	if (handled_count < MAX_ALIASES)
		handled[handled_count++] = strdup(alias);
	return 0;
}

static void forget_handled(void)
{
	while (handled_count)
		free(handled[--handled_count]);
}

/* The parent resumes once modprobe runs: vfork. Children are reaped by SA_NOCLDWAIT (main). */
static void modprobe(const char *alias)
{
	pid_t pid = vfork();

	if (pid == 0) {
		execl("/sbin/modprobe", "modprobe", "-b", "-q", alias, (char *)NULL);
		_exit(127);
	}
	if (pid < 0)
		perror("lab-uevent: vfork");
}

/* The kernel's last uevent number: the ones up to it are sent (or coldplug's to handle). */
static int read_kernel_seqnum(unsigned long long *seqnum)
{
	FILE *f = fopen("/sys/kernel/uevent_seqnum", "r");
	int ok = f && fscanf(f, "%llu", seqnum) == 1;

	if (f)
		fclose(f);
	if (!ok)
		perror("lab-uevent: /sys/kernel/uevent_seqnum");
	return ok ? 0 : -1;
}

/* Replace SEQNUMFILE whole, so that a reader never sees half a number. */
static void write_seqnum(const char *path, unsigned long long seqnum)
{
	char tmp[256];
	int failed;
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f) {
		perror("lab-uevent: seqnum file");
		return;
	}
	failed = fprintf(f, "%llu\n", seqnum) < 0;
	if (fclose(f) || failed || rename(tmp, path))
		perror("lab-uevent: seqnum file");
}

/*
 * Rerun the coldplug pass after a receive buffer overflow: some uevents were lost. Until it
 * ends, nothing counts as handled (see main).
 */
static pid_t coldplug(void)
{
	pid_t pid;

	forget_handled();
	pid = vfork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", ". /lab/lib.sh; lab_coldplug", (char *)NULL);
		_exit(127);
	}
	if (pid < 0)
		perror("lab-uevent: vfork");
	return pid;
}

int main(int argc, char **argv)
{
	struct sockaddr_nl addr = { .nl_family = AF_NETLINK, .nl_groups = 1 };
	int size = 16 << 20;
	static char buf[16384];
	/* SA_NOCLDWAIT: children are reaped by the kernel, not left as zombies for pidof. */
	struct sigaction reap = { .sa_handler = SIG_DFL, .sa_flags = SA_NOCLDWAIT };
	/*
	 * The highest SEQNUM handled: uevents may arrive out of order (the kernel numbers them
	 * before it serialises their sending), so the last one read may not be the highest.
	 */
	unsigned long long seqnum, n;
	pid_t coldplug_pid = 0;
	FILE *pidfile;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: lab-uevent PIDFILE SEQNUMFILE\n");
		return 2;
	}
	sigaction(SIGCHLD, &reap, NULL);
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		perror("lab-uevent: uevent socket");
		return 1;
	}
	/* A storm of uevents (cxl_test) must not overflow the default buffer. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	/* Uevents before the bind are coldplug's; the ones after it are read below. */
	if (read_kernel_seqnum(&seqnum))
		return 1;
	write_seqnum(argv[2], seqnum);
	pidfile = fopen(argv[1], "w");
	if (!pidfile || fprintf(pidfile, "%d\n", getpid()) < 0 || fclose(pidfile)) {
		perror("lab-uevent: pid file");
		return 1;
	}
	for (;;) {
		const char *action = NULL, *subsystem = NULL, *alias = NULL;
		struct pollfd pending = { .fd = fd, .events = POLLIN };
		ssize_t len;

		/* A coldplug rerun still going handles uevents that were lost: wait for it. */
		if (coldplug_pid > 0 && kill(coldplug_pid, 0))
			coldplug_pid = 0;
		if (!coldplug_pid && poll(&pending, 1, 0) == 0)
			write_seqnum(argv[2], seqnum);
		len = recv(fd, buf, sizeof(buf) - 1, 0);

		if (len < 0) {
			if (errno == ENOBUFS) {
				fprintf(stderr, "lab-uevent: uevents lost, coldplug again\n");
				coldplug_pid = coldplug();
				if (!read_kernel_seqnum(&n) && n > seqnum)
					seqnum = n;
			} else if (errno != EINTR) {
				perror("lab-uevent: recv");
				return 1;
			}
			continue;
		}
		buf[len] = '\0';
		/* "ACTION@DEVPATH", then KEY=VALUE strings, each ended by a NUL. */
		for (char *p = buf + strlen(buf) + 1; p < buf + len; p += strlen(p) + 1) {
			if (!strncmp(p, "ACTION=", 7))
				action = p + 7;
			else if (!strncmp(p, "SUBSYSTEM=", 10))
				subsystem = p + 10;
			else if (!strncmp(p, "MODALIAS=", 9))
				alias = p + 9;
			else if (!strncmp(p, "SEQNUM=", 7) && (n = strtoull(p + 7, NULL, 10)) > seqnum)
				seqnum = n;
		}
		if (!action)
			continue;
		if (subsystem && !strcmp(subsystem, "module") &&
		    (!strcmp(action, "add") || !strcmp(action, "remove")))
			forget_handled();
		else if (alias && !strcmp(action, "add") && !already_handled(alias))
			modprobe(alias);
	}
}
