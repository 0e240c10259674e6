/*
 * mock.h: shared declarations of mock_crm, the fake Attio/Close/Pipedrive/Salesforce server
 * used by the integration tests, the benchmarks and the sandbox.
 *
 * The program is single-threaded: everything below runs on one libuv loop, so no function here
 * locks anything. The mock is a test tool, so running out of memory ends it with a log line
 * (mock_xmalloc) instead of threading an error through every caller.
 */
#ifndef MOCK_H
#define MOCK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#define MOCK_MAX_BODY ((size_t)8 << 20)
#define MOCK_MAX_HEADER ((size_t)64 << 10)
#define MOCK_MAX_JSON_DEPTH 64

/* ---- memory and strings (mock_util.c) ---- */

void *mock_xmalloc(size_t n);
void *mock_xrealloc(void *p, size_t n);
char *mock_xstrdup(const char *s);
char *mock_xstrndup(const char *s, size_t n);
int mock_strieq(const char *a, const char *b);

/* True when s starts with prefix. */
int mock_starts_with(const char *s, const char *prefix);

/* Writes base64(in) into out (NUL-terminated); out must hold 4 * ((n + 2) / 3) + 1 bytes. */
void mock_base64(const unsigned char *in, size_t n, char *out);

/* The HTTP reason phrase for a status ("Unknown" for rare ones). */
const char *mock_reason(int status);

/* Decodes %XX and '+' of an x-www-form-urlencoded value in place. */
void mock_form_decode(char *s);

/* Growable byte buffer with a hard cap given at init. data is NUL-terminated once allocated. */
struct mock_buf {
  char *data;
  size_t len;
  size_t cap;
  size_t max;
};

void mock_buf_init(struct mock_buf *b, size_t max);

/* Both return 0, or -1 (buffer unchanged) when the append would pass the cap. */
int mock_buf_append(struct mock_buf *b, const void *p, size_t n);
int mock_buf_puts(struct mock_buf *b, const char *s);
int mock_buf_printf(struct mock_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Returns the text, "" when nothing was ever appended; valid until the next append. */
const char *mock_buf_cstr(const struct mock_buf *b);

/* Hands the memory (NUL-terminated, possibly NULL) to the caller and empties the buffer. */
char *mock_buf_steal(struct mock_buf *b);
void mock_buf_reset(struct mock_buf *b);
void mock_buf_free(struct mock_buf *b);

/* ---- JSON helpers (mock_json.c) ---- */

/*
 * Parses a request body. Refuses embedded NULs and nesting deeper than MOCK_MAX_JSON_DEPTH
 * before yajl_tree sees the text, because yajl_tree_free recurses once per level. text must
 * be NUL-terminated at text[len]. The caller frees the result with yajl_tree_free; NULL on
 * any error.
 */
yajl_val mock_json_parse(const char *text, size_t len);

/* A generator with UTF-8 validation on; the caller frees it with yajl_gen_free. */
yajl_gen mock_gen_new(void);

/* Emits a string; bytes that are not valid UTF-8 are replaced by '?' so output stays JSON. */
void mock_gen_str(yajl_gen g, const char *s);
void mock_gen_strn(yajl_gen g, const char *s, size_t n);
void mock_gen_int(yajl_gen g, long long v);

/* Emits a parsed value unchanged (numbers keep their original digits). */
void mock_gen_val(yajl_gen g, yajl_val v);

/* Deep copy through text, so the copy is an ordinary yajl_tree value freed by yajl_tree_free. */
yajl_val mock_json_clone(yajl_val v);

/* Appends the generator's output to out (uncapped buffers only) and frees the generator. */
void mock_gen_finish(yajl_gen g, struct mock_buf *out);

/* Looks up a member of an object without yajl_tree_get's path arrays; NULL if absent. */
yajl_val mock_obj_get(yajl_val obj, const char *key);

/* ---- requests and responses (mock_http.c builds them, the routes fill them) ---- */

struct mock_header {
  char *name; /* lower-cased for requests */
  char *value;
};

/* One parsed request. Every pointer is owned by the request; mock_req_clear frees them. */
struct mock_req {
  const char *method; /* llhttp's static method name */
  char *path;         /* the request target up to '?', not decoded */
  char *query;        /* after '?', "" when absent */
  const char *host;   /* the Host header or NULL, borrowed from headers */
  struct mock_header *headers;
  size_t nheaders;
  struct mock_buf body; /* capped at MOCK_MAX_BODY */
};

void mock_req_init(struct mock_req *req);
void mock_req_clear(struct mock_req *req);

/* Value of a header by its lower-case name, or NULL. */
const char *mock_req_header(const struct mock_req *req, const char *lname);

/*
 * What the server must send. Routes fill status, headers and body; the HTTP layer adds the
 * status line, Content-Type (unless a header sets it), Content-Length and Connection.
 */
struct mock_resp {
  int status;
  struct mock_header *headers;
  size_t nheaders;
  struct mock_buf body;
  int no_body;            /* 204: neither body nor Content-Length */
  int reset;              /* a "close" fault: drop the connection without an answer */
  uint64_t delay_ms;      /* wait this long (a uv timer) before answering */
  uint64_t stream_bytes;  /* body_bytes fault: a generated body of about this size */
  uint64_t tail_delay_ms; /* and its closing bytes held back this long after the rest */
};

void mock_resp_init(struct mock_resp *resp);
void mock_resp_free(struct mock_resp *resp);

/* Sets a header, replacing one of the same name (compared without case). Copies both. */
void mock_resp_set_header(struct mock_resp *resp, const char *name, const char *value);

/* Sets status and a copy of a fixed JSON body. */
void mock_resp_json(struct mock_resp *resp, int status, const char *json);

/* ---- recorded state (mock_store.c) ---- */

struct mock_field {
  char *name;
  yajl_val value; /* owned, freed with yajl_tree_free */
};

struct mock_record {
  char *key; /* "pipedrive:lead:<id>" etc. */
  struct mock_field *fields;
  size_t nfields;
  struct mock_record *bucket_next;
  struct mock_record *order_next; /* creation order, for a stable /_mock/state */
};

/* Last written value of each record field, looked up by key through a chained hash table. */
struct mock_store {
  struct mock_record **buckets;
  size_t nbuckets;
  size_t count;
  struct mock_record *first;
  struct mock_record *last;
};

void mock_store_init(struct mock_store *st);
void mock_store_clear(struct mock_store *st);

/* Stores a copy of value as key.name, creating the record if needed. */
void mock_store_set(struct mock_store *st, const char *key, const char *name, yajl_val value);

/* Stores every member of obj except those named in skip (a NULL-terminated list, may be NULL). */
void mock_store_set_all(struct mock_store *st, const char *key, yajl_val obj,
                        const char *const *skip);
const struct mock_record *mock_store_get(const struct mock_store *st, const char *key);
yajl_val mock_record_field(const struct mock_record *rec, const char *name);
void mock_store_gen(const struct mock_store *st, yajl_gen g);

/* One call as it arrived, kept for GET /_mock/calls. */
struct mock_call {
  const char *method;
  char *path;
  char *query;
  struct mock_header *headers;
  size_t nheaders;
  char *body;
  size_t body_len;
  int status;
};

/*
 * The call log is a ring of at most max entries: past that the oldest calls are dropped (and
 * counted), so a long benchmark does not grow the mock without bound.
 */
struct mock_calls {
  struct mock_call **ring;
  size_t alloc;
  size_t count;
  size_t head; /* index of the oldest call once the ring is full */
  size_t max;
  uint64_t dropped;
};

void mock_calls_init(struct mock_calls *calls, size_t max);

/* Moves path, query, headers and body out of req into the log; req stays valid but empty. */
void mock_calls_record(struct mock_calls *calls, struct mock_req *req, int status);
void mock_calls_clear(struct mock_calls *calls);
void mock_calls_gen(const struct mock_calls *calls, yajl_gen g);

/* ---- the shared context ---- */

struct mock_fault {
  char *method;      /* NULL: any */
  char *path_prefix; /* NULL: any */
  int status;        /* 0: pass through to the normal route */
  char *body;        /* NULL: the provider's own error body for status */
  struct mock_header *headers;
  size_t nheaders;
  uint64_t delay_ms;
  int64_t times; /* -1 forever, 0 spent */
  uint64_t body_bytes;
  int has_body_bytes;
  uint64_t tail_delay_ms; /* with body_bytes: the document's closing bytes come this late */
  int close;
};

struct mock_creds {
  char *pd_token;
  char *pd_oauth;
  char *close_basic; /* the full "Basic ..." value, derived from the key */
  char *close_oauth;
  char *attio_token;
  char *sf_token;
  char *sf_refresh;
  char *sf_client_id;
  char *sf_client_secret;
};

/* A provider response template, parsed on first use and kept until exit. */
struct mock_tmpl {
  const char *text; /* static text, also the lookup key */
  yajl_val parsed;
};

#define MOCK_MAX_TMPLS 8

struct mock_ctx {
  struct mock_creds creds;
  struct mock_calls calls;
  struct mock_store store;
  struct mock_fault *faults;
  size_t nfaults;
  char **fail_ids;
  size_t nfail_ids;
  char sf_current[64]; /* the Salesforce access token that works now */
  int sf_expired;
  unsigned sf_refreshes;
  uint64_t pd_calls;
  uint64_t close_calls;
  uint64_t sf_calls;
  int verbose;
  struct mock_tmpl tmpls[MOCK_MAX_TMPLS];
  size_t ntmpls;
};

/* Frees everything the context owns (credentials included). */
void mock_ctx_free(struct mock_ctx *ctx);

/* Back to the state after start-up: no calls, faults or fail_ids, first token, zero counters. */
void mock_ctx_reset(struct mock_ctx *ctx);

/* ---- routing (mock_routes.c, mock_providers.c, mock_control.c) ---- */

enum mock_provider {
  MOCK_P_NONE,
  MOCK_P_PIPEDRIVE,
  MOCK_P_CLOSE,
  MOCK_P_ATTIO,
  MOCK_P_SALESFORCE,
};

/* Answers one request: control API, faults, provider routes, recording. Fills resp. */
void mock_handle(struct mock_ctx *ctx, struct mock_req *req, struct mock_resp *resp);

/* The provider-style error body for status (used for auth failures and faults). */
void mock_error_body(enum mock_provider p, int status, struct mock_resp *resp);

/* Per-provider handlers; called after authentication succeeded. */
void mock_pipedrive_route(struct mock_ctx *ctx, const struct mock_req *req, struct mock_resp *resp);
void mock_close_route(struct mock_ctx *ctx, const struct mock_req *req, struct mock_resp *resp);
void mock_attio_route(struct mock_ctx *ctx, const struct mock_req *req, struct mock_resp *resp);
void mock_salesforce_route(struct mock_ctx *ctx, const struct mock_req *req,
                           struct mock_resp *resp);

/* True when id is in the Salesforce fail list. */
int mock_sf_failing(const struct mock_ctx *ctx, const char *id);

/* Handles a /_mock/ path. */
void mock_control_handle(struct mock_ctx *ctx, const struct mock_req *req, struct mock_resp *resp);

/* Path splitting shared by the routes: segments between '/', a trailing '/' gives "". */
#define MOCK_MAX_SEGS 8
struct mock_segs {
  char buf[1024];
  const char *seg[MOCK_MAX_SEGS];
  size_t n;
};

/* Returns 0, or -1 when the path is too long or has too many segments. */
int mock_split_path(const char *path, struct mock_segs *s);

/* ---- the HTTP server (mock_http.c) ---- */

struct mock_conn;

struct mock_server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  struct mock_ctx *ctx;
  struct mock_conn *conns; /* every open connection, so stop can close them */
  int stopping;
};

/*
 * Binds and listens on addr and stores the bound port. On failure the listener is already
 * being closed, so the caller still runs the loop once before uv_loop_close. Returns 0 or a
 * libuv error code.
 */
int mock_server_start(struct mock_server *srv, uv_loop_t *loop, struct mock_ctx *ctx,
                      const struct sockaddr *addr, int *port);

/* Closes the listener and every connection; the loop then ends on its own. */
void mock_server_stop(struct mock_server *srv);

/* ---- logging ---- */

void mock_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
