/*
 * upstream.h: provider calls over one curl multi handle driven by the libuv loop.
 *
 * The engine uses curl's multi socket interface: curl tells us which sockets to watch
 * (uv_poll) and when to wake it (uv_timer, or a uv_idle for "now"), and we hand every event
 * back with curl_multi_socket_action. Nothing here blocks the loop.
 *
 * Ownership: the caller owns each struct up_call and keeps it alive until on_done runs or
 * until up_call_cancel returns. on_done is never called from inside a curl callback, so it
 * may start or cancel other calls. The engine owns the easy handles and recycles them.
 */
#ifndef UCRM_UPSTREAM_H
#define UCRM_UPSTREAM_H

#include <curl/curl.h>
#include <uv.h>

#include "buf.h"
#include "config.h"

struct up_engine;
struct up_lane;
struct up_call;

typedef void (*up_done_cb)(struct up_call *c);

/* Called for each response header of the final response, name lower-cased. */
typedef void (*up_header_cb)(struct up_call *c, const char *name, const char *value);

/*
 * Takes response body bytes instead of the resp buffer. Returns n when it took them all,
 * UP_DATA_PAUSE to have curl hold them and stop reading until up_call_resume, or 0 to fail
 * the transfer.
 */
typedef size_t (*up_data_cb)(struct up_call *c, const char *p, size_t n);
#define UP_DATA_PAUSE CURL_WRITEFUNC_PAUSE

struct up_call {
  /* in: set by the caller before up_call_start */
  const char *method;
  const char *url;
  struct curl_slist *headers; /* owned by the caller */
  const char *body;
  size_t body_len;
  long timeout_ms; /* whole transfer, queueing inside curl included */
  up_done_cb on_done;
  up_header_cb on_header; /* may be NULL */
  up_data_cb on_data;     /* may be NULL: the body then goes to resp */
  void *data;             /* for the caller */

  /* out: valid in on_done */
  CURLcode result;
  long status;
  struct ubuf resp; /* response body; its cap is set by the caller with ubuf_init */
  char content_type[128];
  char retry_after[64];
  long num_connects; /* new connections this transfer opened (0 when one was reused) */

  /* private */
  CURL *easy;
  struct up_engine *eng;
  struct up_call *prev, *next; /* the engine's list of calls in flight or queued */
  int in_body;                 /* headers of the final response are being read */
  struct up_lane *lane;        /* the origin it goes to; NULL when it bypassed the lanes */
  struct up_call *qnext;       /* in its lane's queue, while waiting for a connection */
  int queued;
  uint64_t queued_at; /* loop time it joined the queue, taken off its timeout_ms */
};

/* The engine keeps its own copy of cfg; later config reloads do not change the pool. */
int up_engine_new(uv_loop_t *loop, const struct ucrm_upstream_cfg *cfg, struct up_engine **out);

/*
 * Queues the transfer; it starts on the next loop iteration. Returns 0 or a UCRM_E* code.
 *
 * Calls to one origin (scheme, host and port) beyond max_host_connections wait in the engine,
 * first come first served, rather than inside curl: curl would hold them as pending transfers
 * and rescan them all whenever a connection frees up, which costs more the more there are.
 * Their time in that queue counts against timeout_ms: one whose timeout_ms runs out while it
 * waits fails then with CURLE_OPERATION_TIMEDOUT, without ever being sent.
 */
int up_call_start(struct up_engine *e, struct up_call *c);

/* The HTTP status of the response being received (0 before its status line). */
long up_call_status(const struct up_call *c);

/* Lets a transfer paused by its on_data callback read again. */
void up_call_resume(struct up_call *c);

/*
 * Stops a started (or still queued) call at once; on_done will not run. Safe on a call that
 * already finished.
 */
void up_call_cancel(struct up_call *c);

/*
 * Stops every call still in flight (their on_done never runs; a later up_call_cancel on them
 * is a no-op), closes cached connections and the engine's handles. The engine's memory is
 * freed from a close callback, so run the loop afterwards until it has no more handles.
 */
void up_engine_close(struct up_engine *e);

#endif
