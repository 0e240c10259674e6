/*
 * respond.h: the JSON bodies unicrm answers with (SPEC 3.4 and 3.5).
 *
 * Each builder returns a jv tree the caller owns, or writes straight to a srv_req. Field
 * exclusion (truto_exclude_fields) and remote_data suppression are applied by
 * ucrm_respond_shape before a tree is serialised.
 */
#ifndef UCRM_RESPOND_H
#define UCRM_RESPOND_H

#include "assoc.h"
#include "json.h"
#include "provider.h"
#include "query.h"
#include "server.h"

/* Per-link outcome of a request that reached the provider. */
struct ucrm_result {
  struct ucrm_link link;
  enum ucrm_link_status status;
  long remote_status; /* 0 when not attempted */
  const char *error;  /* points into a verdict message, or NULL */
};

/* Sends {"statusCode","error","message"} with optional extra header lines. */
void ucrm_respond_error(struct srv_req *r, int status, const char *message, const char *extra);

/* Serialises root (consumed) and sends it. */
void ucrm_respond_json(struct srv_req *r, int status, struct jv *root, const char *extra);

/* Drops excluded fields and, when asked, remote_data from a success tree. */
void ucrm_respond_shape(struct jv *root, const struct ucrm_query *q);

/*
 * The unified success body; replies[i] is call i's parsed body (NULL for an empty one). The
 * replies move into the body (each slot is left NULL), sparing a deep copy per request.
 */
struct jv *ucrm_body_unified(const struct ucrm_assoc *a, const struct ucrm_plan *plan,
                             struct jv **replies);

/* The normalized success body: one row per link. */
struct jv *ucrm_body_normalized(const struct ucrm_assoc *a, const struct ucrm_result *res,
                                size_t nres);

/* The error body of a provider failure, with raw_response and, for several writes, results. */
struct jv *ucrm_body_remote_error(int status, const char *message, const struct jv *raw,
                                  const struct ucrm_result *res, size_t nres, int several);

/* The dry-run plan; credentials never appear in it (auth headers are not part of a plan). */
struct jv *ucrm_body_plan(const struct ucrm_account *acct, const struct ucrm_plan *plan,
                          const char *remote_qs);

/* One NDJSON line of the stream format for a finished call. */
struct jv *ucrm_body_stream_line(const struct ucrm_call *call, const char *status,
                                 long remote_status, const struct jv *reply);

/* A copy of the reply as remote_data: the parsed body, or its text if it was not JSON. */
struct jv *ucrm_reply_value(const struct jv *parsed, const char *raw, size_t len);

#endif
