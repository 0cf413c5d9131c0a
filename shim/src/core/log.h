/* Logging: one write() per line to stderr or one file opened once (no FILE* per thread). */
#ifndef SPILLWAY_LOG_H
#define SPILLWAY_LOG_H

#include "config.h"

void log_open(const struct spw_config *c);
void spw_log(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Write raw text to the log destination. */
void log_write(const char *text, size_t len);

#endif
