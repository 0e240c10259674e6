/*
 * mock_main.c: command line, start-up and shutdown of mock_crm.
 *
 *   mock_crm [--listen HOST:PORT] [--max-calls N] [--verbose] [credential options]
 *
 * After binding it prints "port=N" on stdout, so a test that started it on port 0 learns the
 * port. SIGTERM or SIGINT closes every handle and exits 0.
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

struct mock_opts {
  const char *listen;
  size_t max_calls;
  int verbose;
  const char *pd_token;
  const char *pd_oauth;
  const char *close_key;
  const char *close_oauth;
  const char *attio_token;
  const char *sf_token;
  const char *sf_refresh;
  const char *sf_client_id;
  const char *sf_client_secret;
};

struct mock_main {
  uv_loop_t loop;
  uv_signal_t sigterm;
  uv_signal_t sigint;
  struct mock_server srv;
  struct mock_ctx ctx;
};

static void mock_usage(FILE *out) {
  fputs("usage: mock_crm [--listen HOST:PORT] [--max-calls N] [--verbose]\n"
        "                [--pipedrive-token T] [--pipedrive-oauth-token T]\n"
        "                [--close-key K] [--close-oauth-token T] [--attio-token T]\n"
        "                [--sf-token T] [--sf-refresh-token T] [--sf-client-id ID]\n"
        "                [--sf-client-secret S]\n",
        out);
}

/* Credential options: each maps a flag to the field of mock_opts it sets. */
struct mock_flag {
  const char *name;
  size_t offset;
};

static const struct mock_flag mock_flags[] = {
    {"--listen", offsetof(struct mock_opts, listen)},
    {"--pipedrive-token", offsetof(struct mock_opts, pd_token)},
    {"--pipedrive-oauth-token", offsetof(struct mock_opts, pd_oauth)},
    {"--close-key", offsetof(struct mock_opts, close_key)},
    {"--close-oauth-token", offsetof(struct mock_opts, close_oauth)},
    {"--attio-token", offsetof(struct mock_opts, attio_token)},
    {"--sf-token", offsetof(struct mock_opts, sf_token)},
    {"--sf-refresh-token", offsetof(struct mock_opts, sf_refresh)},
    {"--sf-client-id", offsetof(struct mock_opts, sf_client_id)},
    {"--sf-client-secret", offsetof(struct mock_opts, sf_client_secret)},
};

/* Accepts "--name value" and "--name=value"; returns the value or NULL. */
static const char *mock_flag_value(const char *flag, int argc, char **argv, int *i) {
  size_t n = strlen(flag);
  const char *arg = argv[*i];

  if (strncmp(arg, flag, n) != 0)
    return NULL;
  if (arg[n] == '=')
    return arg + n + 1;
  if (arg[n] != '\0' || *i + 1 >= argc)
    return NULL;
  return argv[++*i];
}

static int mock_parse_one(struct mock_opts *o, int argc, char **argv, int *i) {
  const char *v;

  if (strcmp(argv[*i], "--verbose") == 0) {
    o->verbose = 1;
    return 0;
  }
  if ((v = mock_flag_value("--max-calls", argc, argv, i)) != NULL) {
    char *end;
    unsigned long long n = strtoull(v, &end, 10);

    if (*v == '\0' || *end != '\0' || n > SIZE_MAX / sizeof(void *))
      return -1;
    o->max_calls = (size_t)n;
    return 0;
  }
  for (size_t k = 0; k < sizeof(mock_flags) / sizeof(mock_flags[0]); k++) {
    if ((v = mock_flag_value(mock_flags[k].name, argc, argv, i)) != NULL) {
      *(const char **)((char *)o + mock_flags[k].offset) = v;
      return 0;
    }
  }
  return -1;
}

static int mock_parse_args(struct mock_opts *o, int argc, char **argv) {
  *o = (struct mock_opts){
      .listen = "127.0.0.1:0",
      .max_calls = 100000,
      .pd_token = "pd-test-token",
      .pd_oauth = "pd-oauth-token",
      .close_key = "close-test-key",
      .close_oauth = "close-oauth-token",
      .attio_token = "attio-test-token",
      .sf_token = "sf-test-token",
      .sf_refresh = "sf-refresh-token",
      .sf_client_id = "sf-client",
      .sf_client_secret = "sf-secret",
  };
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      mock_usage(stdout);
      exit(0);
    }
    if (mock_parse_one(o, argc, argv, &i) != 0) {
      fprintf(stderr, "mock_crm: bad argument: %s\n", argv[i]);
      return -1;
    }
  }
  /* The token lives in a fixed buffer next to the refreshed ones. */
  if (strlen(o->sf_token) >= sizeof(((struct mock_ctx *)0)->sf_current)) {
    fprintf(stderr, "mock_crm: --sf-token is too long\n");
    return -1;
  }
  return 0;
}

/* Close takes its API key as the HTTP Basic user name with an empty password. */
static char *mock_close_basic(const char *key) {
  size_t n = strlen(key) + 1;
  char *pair = mock_xmalloc(n + 1);
  char *out = mock_xmalloc(6 + 4 * ((n + 2) / 3) + 1);

  memcpy(pair, key, n - 1);
  pair[n - 1] = ':';
  pair[n] = '\0';
  memcpy(out, "Basic ", 6);
  mock_base64((const unsigned char *)pair, n, out + 6);
  free(pair);
  return out;
}

static void mock_ctx_init(struct mock_ctx *ctx, const struct mock_opts *o) {
  memset(ctx, 0, sizeof(*ctx));
  ctx->creds = (struct mock_creds){
      .pd_token = mock_xstrdup(o->pd_token),
      .pd_oauth = mock_xstrdup(o->pd_oauth),
      .close_basic = mock_close_basic(o->close_key),
      .close_oauth = mock_xstrdup(o->close_oauth),
      .attio_token = mock_xstrdup(o->attio_token),
      .sf_token = mock_xstrdup(o->sf_token),
      .sf_refresh = mock_xstrdup(o->sf_refresh),
      .sf_client_id = mock_xstrdup(o->sf_client_id),
      .sf_client_secret = mock_xstrdup(o->sf_client_secret),
  };
  ctx->verbose = o->verbose;
  mock_calls_init(&ctx->calls, o->max_calls);
  mock_store_init(&ctx->store);
  mock_ctx_reset(ctx);
}

/* HOST:PORT, with an IPv6 host in brackets ([::1]:0). */
static int mock_parse_listen(const char *spec, struct sockaddr_storage *addr) {
  char host[128];
  const char *colon = strrchr(spec, ':');
  char *end;

  if (colon == NULL || (size_t)(colon - spec) >= sizeof(host))
    return -1;

  long port = strtol(colon + 1, &end, 10);
  if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535)
    return -1;

  size_t n = (size_t)(colon - spec);
  if (n >= 2 && spec[0] == '[' && spec[n - 1] == ']') {
    memcpy(host, spec + 1, n - 2);
    host[n - 2] = '\0';
    return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)addr) == 0 ? 0 : -1;
  }
  memcpy(host, spec, n);
  host[n] = '\0';
  return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)addr) == 0 ? 0 : -1;
}

static void mock_on_signal(uv_signal_t *sig, int signum) {
  struct mock_main *m = sig->data;

  mock_log("info", "msg=stopping signal=%d", signum);
  mock_server_stop(&m->srv);
  uv_close((uv_handle_t *)&m->sigterm, NULL);
  uv_close((uv_handle_t *)&m->sigint, NULL);
}

static void mock_signals_start(struct mock_main *m) {
  uv_signal_init(&m->loop, &m->sigterm);
  uv_signal_init(&m->loop, &m->sigint);
  m->sigterm.data = m;
  m->sigint.data = m;
  uv_signal_start(&m->sigterm, mock_on_signal, SIGTERM);
  uv_signal_start(&m->sigint, mock_on_signal, SIGINT);
}

/* Runs the loop until every handle is closed, then frees what the context holds. */
static int mock_run(struct mock_main *m, const struct sockaddr *addr) {
  int port = 0;
  int rc = mock_server_start(&m->srv, &m->loop, &m->ctx, addr, &port);

  if (rc != 0) {
    mock_log("error", "msg=listen_failed err=%s", uv_strerror(rc));
    uv_run(&m->loop, UV_RUN_DEFAULT);
    return 1;
  }
  mock_signals_start(m);
  printf("port=%d\n", port);
  fflush(stdout);
  mock_log("info", "msg=listening port=%d", port);
  uv_run(&m->loop, UV_RUN_DEFAULT);
  return 0;
}

int main(int argc, char **argv) {
  struct mock_opts opts;
  struct sockaddr_storage addr;
  static struct mock_main m;

  if (mock_parse_args(&opts, argc, argv) != 0) {
    mock_usage(stderr);
    return 2;
  }
  if (mock_parse_listen(opts.listen, &addr) != 0) {
    fprintf(stderr, "mock_crm: bad --listen address: %s\n", opts.listen);
    return 2;
  }

  /* A client that disconnects mid-write must give us EPIPE, not kill the process. */
  signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&m.loop);
  mock_ctx_init(&m.ctx, &opts);

  int rc = mock_run(&m, (const struct sockaddr *)&addr);
  mock_ctx_free(&m.ctx);
  if (uv_loop_close(&m.loop) != 0) {
    mock_log("error", "msg=loop_not_closed");
    rc = 1;
  }
  return rc;
}
