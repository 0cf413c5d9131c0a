#include "log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

/* Written once in log_open (inside the init once), read-only afterwards. */
static int log_fd = 2;
static enum log_level log_level = LOG_WARN;

void log_open(const struct spw_config *c)
{
	log_level = c->log_level;
	if (c->log_path[0]) {
		int fd = open(c->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd >= 0)
			log_fd = fd;
		else
			spw_log(LOG_ERROR, "cannot open log file %s; logging to stderr",
				c->log_path);
	}
}

void log_write(const char *text, size_t len)
{
	while (len > 0) {
		ssize_t n = write(log_fd, text, len);

		if (n <= 0)
			return;
		text += n;
		len -= (size_t)n;
	}
}

void spw_log(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "", "error", "warn", "info", "debug" };
	char line[1024];
	va_list ap;
	int n, m;

	if (level > log_level || level == LOG_OFF)
		return;
	n = snprintf(line, sizeof(line), "spillway[%d] %s: ", (int)getpid(), names[level]);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	log_write(line, (size_t)n);
}
