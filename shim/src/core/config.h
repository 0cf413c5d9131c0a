/* Configuration from the environment, parsed once at first use (never in a constructor). */
#ifndef SPILLWAY_CONFIG_H
#define SPILLWAY_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum spill_backend_mode { BACKEND_AUTO, BACKEND_POOL, BACKEND_HOST, BACKEND_OFF };
enum report_mode { REPORT_VIRTUAL, REPORT_PHYSICAL };
enum log_level { LOG_OFF, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

#define DEFAULT_HEADROOM  (256ULL << 20)
#define DEFAULT_MIN_SPILL (1ULL << 20)
#define DEFAULT_CHUNK	  (256ULL << 20)
#define DEFAULT_LARGE	  (32ULL << 20)
/* The default SPILLWAY_RESERVE: a tenth of the budget, at most this. */
#define RESERVE_DEFAULT_DIV 10
#define RESERVE_DEFAULT_MAX (1ULL << 30)

struct spw_config {
	uint64_t vram_limit;  /* SPILLWAY_VRAM_LIMIT per device, 0 = the card's size */
	uint64_t headroom;    /* SPILLWAY_HEADROOM: VRAM kept free for the driver and kernels */
	uint64_t min_spill;   /* SPILLWAY_MIN_SPILL: smaller requests always go to VRAM */
	uint64_t spill_limit; /* SPILLWAY_SPILL_LIMIT: spilled bytes per process, 0 = no cap */
	uint64_t chunk;	      /* SPILLWAY_CHUNK: size of one registered spill arena */
	uint64_t reserve;     /* SPILLWAY_RESERVE: budget kept for requests below large */
	int reserve_auto;     /* reserve unset: a tenth of the budget, at most 1 GiB */
	uint64_t large;	      /* SPILLWAY_LARGE: requests this big stay out of the reserve */
	enum spill_backend_mode backend;
	enum report_mode report;
	enum log_level log_level;
	int log_stats;	    /* print stats at exit */
	char log_path[512]; /* empty = stderr */
};

/* The parsed configuration; parses on the first call. */
const struct spw_config *spw_config(void);

/*
 * Parse "512M", "8G", "8GiB", "4096" into bytes (binary units, case-insensitive).
 * Returns 0 and sets *out, or -1 for anything else (empty, junk, overflow).
 */
int parse_size(const char *s, uint64_t *out);

/* Parse the whole configuration from a getenv-like function (tests call this directly). */
void config_parse(struct spw_config *c, const char *(*get)(const char *name));

#endif
