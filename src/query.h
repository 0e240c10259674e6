/*
 * query.h: the query string of POST /unified/crm/associations (SPEC 3.1).
 *
 * The query is percent-decoded once. Repeated scalars, bad booleans, an unknown response format
 * and malformed bracket keys are a 400. remote_query is re-encoded strictly into
 * remote_qs, ready to append to every upstream URL. Unknown parameters are ignored.
 */
#ifndef UCRM_QUERY_H
#define UCRM_QUERY_H

#include <stddef.h>

#include "common.h"

enum ucrm_format { UCRM_FMT_UNIFIED, UCRM_FMT_RAW, UCRM_FMT_NORMALIZED, UCRM_FMT_STREAM };

#define UCRM_QUERY_MAX_EXCLUDE 64
#define UCRM_REMOTE_QUERY_MAX_PARAMS 64
#define UCRM_REMOTE_QUERY_MAX_DEPTH 8

struct ucrm_query {
  char *account_id; /* NULL when absent */
  enum ucrm_format format;
  int ignore_remote_data;
  int dry_run;
  char *exclude[UCRM_QUERY_MAX_EXCLUDE];
  size_t nexclude;
  char *remote_qs; /* "k=v&k2=v2" strictly encoded, or NULL */
  size_t nremote;
};

/* Parses qs (without the '?'); owns its strings afterwards. Fills err (400) on failure. */
int ucrm_query_parse(const char *qs, size_t len, struct ucrm_query *q, struct ucrm_err *err);
void ucrm_query_free(struct ucrm_query *q);

const char *ucrm_format_name(enum ucrm_format f);

#endif
