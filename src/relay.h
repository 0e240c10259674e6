/*
 * relay.h: writing the incremental formats: the NDJSON lines of "stream" and the pass-through
 * body of "raw".
 *
 * A stream line is either written whole from a reply we hold (relay_line) or opened when a
 * provider body starts to arrive, fed as its bytes come (their JSON re-generated, never held
 * whole) and closed when the call ends (relay_line_open / _data / _close). The last line of a
 * stream is the summary (relay_summary), which also ends the response.
 *
 * Ownership: a struct relay lives inside the request's job and points at the request, query
 * and association, which outlive it. relay_free releases what it allocated.
 */
#ifndef UCRM_RELAY_H
#define UCRM_RELAY_H

#include "assoc.h"
#include "jstream.h"
#include "provider.h"
#include "query.h"
#include "respond.h"
#include "server.h"

#define RELAY_HIGH_WATER (256 * 1024) /* queued client bytes past which provider reads pause */

struct relay {
  struct srv_req *req;
  const struct ucrm_query *q;
  const struct ucrm_assoc *a;
  struct jstream *js;
  int started;        /* the response head has been sent */
  int line_open;      /* a streamed line waits for its remote_data to end */
  int line_has_field; /* the open line already holds a member (a comma comes next) */
  int js_failed;      /* the streamed remote_data was cut short or was not JSON */
  char js_error[96];
};

void relay_init(struct relay *r, struct srv_req *req, const struct ucrm_query *q,
                const struct ucrm_assoc *a);
void relay_free(struct relay *r);

/* Sends the head of the stream format if not sent yet; extra holds header lines. */
void relay_stream_begin(struct relay *r, const char *extra);

/* A whole line for a call whose reply we hold (parsed, or NULL). */
void relay_line(struct relay *r, const struct ucrm_call *call, const char *status,
                long remote_status, const struct jv *reply);

/* Opens a line whose remote_data is streamed; relay_line_data feeds the provider's bytes. */
int relay_line_open(struct relay *r, const struct ucrm_call *call, long remote_status);
void relay_line_data(struct relay *r, const char *p, size_t n);

/* Ends the streamed remote_data and the line; error may be NULL. Returns 0 if the body was
 * one valid JSON document. */
int relay_line_close(struct relay *r, const char *status, const char *error);

/* The summary line: links applied so far, the overall status and any error; ends the stream. */
void relay_summary(struct relay *r, const struct ucrm_result *res, size_t nres, const char *status,
                   const char *error);

/* raw with one call: the provider's status, content type and bytes as they arrive. */
void relay_raw_begin(struct relay *r, int status, const char *content_type, const char *extra);
void relay_raw_data(struct relay *r, const char *p, size_t n);
void relay_raw_end(struct relay *r);

/* Whether the client is reading too slowly for more provider bytes to be taken now. */
int relay_backpressured(const struct relay *r);

#endif
