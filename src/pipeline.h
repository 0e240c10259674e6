/*
 * pipeline.h: the application: routes requests and turns one association request into its
 * provider calls, one at a time, then answers in the requested format.
 *
 * Writes of one request are made in plan order, one after another: a failure stops the rest,
 * so the caller always learns exactly which links exist (applied, failed, not_attempted).
 *
 * Ownership: struct ucrm_app holds the live config (replaced on reload; requests in flight
 * keep the one they started with), the upstream engine and the server; it outlives all jobs.
 */
#ifndef UCRM_PIPELINE_H
#define UCRM_PIPELINE_H

#include <uv.h>

#include "config.h"
#include "server.h"
#include "upstream.h"

struct ucrm_app {
  uv_loop_t *loop;
  struct ucrm_config *cfg;
  struct up_engine *up;
  struct srv *srv;
  int jobs; /* requests with provider work in flight */

  /* Finished jobs kept for reuse (at most JOB_SPARE_MAX), so a steady load allocates no job
   * memory: a job is a couple of KiB, too big for the allocator's per-size caches. */
  struct job *spare;
  int nspare;
};

/* The server's request callback; data is the struct ucrm_app. */
void ucrm_app_on_request(struct srv_req *r, void *data);

/* The server's completion callback: records the request in the metrics. */
void ucrm_app_on_complete(struct srv_req *r, void *data);

/* Installs a new config; the old one is freed once no job uses it. */
void ucrm_app_set_config(struct ucrm_app *app, struct ucrm_config *cfg);

/* Frees the config if no job holds it, and the spare jobs; call at shutdown. */
void ucrm_app_release(struct ucrm_app *app);

/* Parses an HTTP Retry-After value (seconds or an HTTP date) into milliseconds; -1 if bad. */
long ucrm_retry_after_ms(const char *value, long now_s);

#endif
