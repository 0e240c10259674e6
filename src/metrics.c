#include "metrics.h"

#include <stdio.h>
#include <string.h>

#include "common.h"

#ifndef UNICRM_VERSION
#define UNICRM_VERSION "0.0.0"
#endif

#define UM_MAX_SERIES 512
#define UM_NBUCKETS 12

static const double um_bounds[UM_NBUCKETS - 1] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                  0.5,   1,    2.5,   5,    10};

/* One labelled series of a family: a counter, a gauge, or a histogram's buckets. */
struct um_series {
  const char *family;
  /* The label values, compared on every update; labels is rendered once, at creation. Values
   * are short names (routes, formats, providers, methods); a longer one is cut to fit. */
  char a[48], b[48];
  long n;
  char labels[160]; /* rendered: a="x",b="y" */
  double value;     /* counter or gauge; histogram sum */
  unsigned long long count;
  unsigned long long buckets[UM_NBUCKETS];
};

static struct um_series um_all[UM_MAX_SERIES];
static size_t um_n;
static unsigned long long um_dropped; /* series refused once the table was full */

struct um_family {
  const char *name;
  const char *type;
  const char *help;
};

static const struct um_family um_families[] = {
    {"unicrm_requests_total", "counter", "Requests answered, by route, format and status."},
    {"unicrm_request_duration_seconds", "histogram", "Time from request start to answer."},
    {"unicrm_provider_calls_total", "counter",
     "Provider calls made, by provider, method and status (0: no HTTP answer)."},
    {"unicrm_provider_call_duration_seconds", "histogram", "Time of one provider call."},
    {"unicrm_retries_total", "counter", "Provider calls retried, by provider."},
    {"unicrm_token_refreshes_total", "counter", "Token refreshes, by provider and outcome."},
    {"unicrm_inflight_calls", "gauge", "Provider calls in flight, by provider."},
    {"unicrm_queue_depth", "gauge", "Requests waiting for a per-account slot, by provider."},
};

static int um_same(const struct um_series *s, const char *family, const char *a, const char *b,
                   long n) {
  return s->family == family && s->n == n && strncmp(s->a, a, sizeof(s->a) - 1) == 0 &&
         strncmp(s->b, b, sizeof(s->b) - 1) == 0;
}

/*
 * The series of family with label values a, b and n; fmt renders them (in that order) the
 * first time. Updates compare the values instead of formatting a label string each time.
 */
static struct um_series *um_find(const char *family, const char *fmt, const char *a,
                                 const char *b, long n) {
  for (size_t i = 0; i < um_n; i++) {
    if (um_same(&um_all[i], family, a, b, n))
      return &um_all[i];
  }
  if (um_n == UM_MAX_SERIES) {
    um_dropped++;
    return NULL;
  }
  struct um_series *s = &um_all[um_n++];
  memset(s, 0, sizeof(*s));
  s->family = family;
  snprintf(s->a, sizeof(s->a), "%s", a);
  snprintf(s->b, sizeof(s->b), "%s", b);
  s->n = n;
  snprintf(s->labels, sizeof(s->labels), fmt, a, b, n);
  return s;
}

static void um_add(struct um_series *s, double delta) {
  if (s != NULL)
    s->value += delta;
}

static void um_observe(struct um_series *s, double seconds) {
  if (s == NULL)
    return;
  s->value += seconds;
  s->count++;
  size_t b = 0;
  while (b < UM_NBUCKETS - 1 && seconds > um_bounds[b])
    b++;
  s->buckets[b]++;
}

/* Label formats: each takes a, b and n, in that order, and may ignore the last ones. */
#define UM_F_ROUTE_FORMAT_STATUS "route=\"%s\",format=\"%s\",status=\"%ld\""
#define UM_F_ROUTE "route=\"%s\"%.0s%.0ld"
#define UM_F_PROVIDER_METHOD_STATUS "provider=\"%s\",method=\"%s\",status=\"%ld\""
#define UM_F_PROVIDER "provider=\"%s\"%.0s%.0ld"
#define UM_F_PROVIDER_OUTCOME "provider=\"%s\",outcome=\"%s\"%.0ld"

void um_request(const char *route, const char *format, int status, double seconds) {
  um_add(um_find(um_families[0].name, UM_F_ROUTE_FORMAT_STATUS, route, format, status), 1);
  um_observe(um_find(um_families[1].name, UM_F_ROUTE, route, "", 0), seconds);
}

void um_provider_call(const char *provider, const char *method, long status, double seconds) {
  um_add(um_find(um_families[2].name, UM_F_PROVIDER_METHOD_STATUS, provider, method, status), 1);
  um_observe(um_find(um_families[3].name, UM_F_PROVIDER, provider, "", 0), seconds);
}

void um_retry(const char *provider) {
  um_add(um_find(um_families[4].name, UM_F_PROVIDER, provider, "", 0), 1);
}

void um_refresh(const char *provider, int ok) {
  um_add(um_find(um_families[5].name, UM_F_PROVIDER_OUTCOME, provider, ok ? "ok" : "failed", 0),
         1);
}

void um_inflight(const char *provider, int delta) {
  um_add(um_find(um_families[6].name, UM_F_PROVIDER, provider, "", 0), delta);
}

void um_queue(const char *provider, int delta) {
  um_add(um_find(um_families[7].name, UM_F_PROVIDER, provider, "", 0), delta);
}

static int um_render_histogram(struct ubuf *out, const struct um_series *s) {
  unsigned long long cum = 0;
  int rc = 0;
  for (size_t b = 0; b < UM_NBUCKETS && rc == 0; b++) {
    cum += s->buckets[b];
    if (b < UM_NBUCKETS - 1)
      rc = ubuf_printf(out, "%s_bucket{%s,le=\"%g\"} %llu\n", s->family, s->labels, um_bounds[b],
                       cum);
    else
      rc = ubuf_printf(out, "%s_bucket{%s,le=\"+Inf\"} %llu\n", s->family, s->labels, cum);
  }
  rc = rc != 0 ? rc : ubuf_printf(out, "%s_sum{%s} %.6f\n", s->family, s->labels, s->value);
  return rc != 0 ? rc : ubuf_printf(out, "%s_count{%s} %llu\n", s->family, s->labels, s->count);
}

int um_render(struct ubuf *out, int open_connections) {
  int rc = 0;
  for (size_t f = 0; f < UCRM_ARRAY_LEN(um_families) && rc == 0; f++) {
    const struct um_family *fam = &um_families[f];
    rc = ubuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", fam->name, fam->help, fam->name,
                     fam->type);
    for (size_t i = 0; i < um_n && rc == 0; i++) {
      const struct um_series *s = &um_all[i];
      if (s->family != fam->name)
        continue;
      if (strcmp(fam->type, "histogram") == 0)
        rc = um_render_histogram(out, s);
      else
        rc = ubuf_printf(out, "%s{%s} %.17g\n", s->family, s->labels, s->value);
    }
  }
  rc = rc != 0 ? rc
               : ubuf_printf(out,
                             "# HELP unicrm_open_connections Client connections open.\n"
                             "# TYPE unicrm_open_connections gauge\n"
                             "unicrm_open_connections %d\n",
                             open_connections);
  rc = rc != 0 ? rc
               : ubuf_printf(out,
                             "# HELP unicrm_metric_series_dropped_total Series not "
                             "recorded because the table was full.\n"
                             "# TYPE unicrm_metric_series_dropped_total counter\n"
                             "unicrm_metric_series_dropped_total %llu\n",
                             um_dropped);
  rc = rc != 0 ? rc
               : ubuf_printf(out,
                             "# HELP unicrm_build_info Build information.\n"
                             "# TYPE unicrm_build_info gauge\n"
                             "unicrm_build_info{version=\"%s\"} 1\n",
                             UNICRM_VERSION);
  return rc;
}
