/*
 * metrics.h: the process's counters, gauges and histograms, rendered in the Prometheus text
 * format for GET /metrics.
 *
 * Label values are bounded by construction: routes, formats, provider names, HTTP methods and
 * status codes; never ids or account ids. Each worker process keeps its own numbers.
 */
#ifndef UCRM_METRICS_H
#define UCRM_METRICS_H

#include "buf.h"

void um_request(const char *route, const char *format, int status, double seconds);
void um_provider_call(const char *provider, const char *method, long status, double seconds);
void um_retry(const char *provider);
void um_refresh(const char *provider, int ok);
void um_inflight(const char *provider, int delta);
void um_queue(const char *provider, int delta);

/* Appends the exposition text; open_connections is read from the server at scrape time. */
int um_render(struct ubuf *out, int open_connections);

#endif
