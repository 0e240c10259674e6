/*
 * server.h: the HTTP/1.1 server: libuv TCP, llhttp in strict mode, keep-alive, pipelining,
 * limits and timeouts.
 *
 * Each connection handles one request at a time: the parser pauses after a message, the
 * request goes to the on_request callback, and the next pipelined request is parsed only once
 * the response has been written, so answers leave in order.
 *
 * Ownership: a struct srv_req belongs to its connection. The handler that receives it may
 * keep the pointer until it ends the response (srv_respond or srv_stream_end) or until the
 * abort callback it registered runs (the client went away); after either, it must not touch
 * the request again.
 */
#ifndef UCRM_SERVER_H
#define UCRM_SERVER_H

#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "config.h"

struct srv;
struct srv_req;

typedef void (*srv_request_cb)(struct srv_req *r, void *data);
typedef void (*srv_abort_cb)(void *data);
typedef void (*srv_drain_cb)(void *data);
typedef void (*srv_drained_cb)(struct srv *s);

enum srv_method { SRV_GET, SRV_POST, SRV_OTHER };

struct srv_req {
  enum srv_method method;
  const char *method_name;
  const char *path;  /* without the query; NUL-terminated */
  const char *query; /* after '?', or "" */
  size_t query_len;
  const char *body;
  size_t body_len;
  char request_id[65];
  uint64_t start_ms;

  /* filled by the handler, read by the access log */
  const char *log_format;
  const char *log_provider;
  int log_calls;
  int log_retries;

  /* private */
  struct srv_conn *conn;
  srv_abort_cb on_abort;
  void *abort_data;
  srv_drain_cb on_drain;
  void *drain_data;
  int status;
  int streaming;
};

struct srv_opts {
  const struct ucrm_limits *limits;
  srv_request_cb on_request;
  srv_request_cb on_complete; /* after each answer, for metrics; may be NULL */
  void *data;
};

int srv_new(uv_loop_t *loop, const struct srv_opts *opts, struct srv **out);

/* Binds and listens; with reuseport, several processes may share the port. */
int srv_listen(struct srv *s, const char *host, int port, int reuseport);

/* The port actually bound (useful with port 0). */
int srv_port(const struct srv *s);

/* Replaces the limits (config reload); applies to new requests. */
void srv_set_limits(struct srv *s, const struct ucrm_limits *limits);

/* Whether the server is draining (new requests get 503). */
int srv_draining(const struct srv *s);

/*
 * Starts draining: idle connections close, every new request is answered 503 with
 * Connection: close, and cb runs once no request handed to on_request is still in flight.
 */
void srv_drain(struct srv *s, srv_drained_cb cb);

/* Closes every connection and the listener; run the loop until idle, then call srv_free. */
void srv_close(struct srv *s);
void srv_free(struct srv *s);

int srv_open_connections(const struct srv *s);

/* Registers the callback that runs if the client goes away before the response ends. */
void srv_req_on_abort(struct srv_req *r, srv_abort_cb cb, void *data);

/*
 * Sends a whole response. extra_headers is "" or lines each ending in "\r\n". The status line,
 * headers and body leave in one write.
 */
void srv_respond(struct srv_req *r, int status, const char *content_type, const char *extra_headers,
                 const char *body, size_t len);

/* A chunked response: begin, any number of chunks, end. Empty chunks are skipped. */
void srv_stream_begin(struct srv_req *r, int status, const char *content_type,
                      const char *extra_headers);
void srv_stream_write(struct srv_req *r, const char *data, size_t len);
void srv_stream_end(struct srv_req *r);

/* Registers a callback for when every queued byte of the response has reached the socket. */
void srv_req_on_drain(struct srv_req *r, srv_drain_cb cb, void *data);

/*
 * Ends a response that cannot be finished properly (a relayed body broke off): the connection
 * closes at once, so the client sees a truncated message rather than a complete wrong one.
 * The abort callback is not run.
 */
void srv_req_abort(struct srv_req *r);

/* Bytes queued to the client socket and not yet written. */
size_t srv_req_pending_bytes(const struct srv_req *r);

const char *srv_reason(int status);

/* Milliseconds since the request's first byte, on the loop's clock. */
uint64_t srv_req_age_ms(const struct srv_req *r);

/* Milliseconds of the loop's clock, for latency measurements. */
uint64_t srv_now_ms(const struct srv *s);

#endif
