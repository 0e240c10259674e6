/*
 * config.h: the proxy's configuration, parsed and checked in one place.
 *
 * ucrm_config_load reads the JSON file of SPEC section 2, resolves "env:NAME" credentials and
 * checks every key; runtime code receives a struct it can trust. A struct ucrm_config is
 * immutable once loaded except for the per-account token state of providers that refresh
 * tokens; it is freed with ucrm_config_free once no request uses it any more.
 */
#ifndef UCRM_CONFIG_H
#define UCRM_CONFIG_H

#include <stddef.h>

struct ucrm_provider;

struct ucrm_limits {
  long max_connections;
  long max_header_bytes;
  long max_body_bytes;
  long header_timeout_ms;
  long idle_timeout_ms;
  long request_timeout_ms;
  long drain_timeout_ms;
};

struct ucrm_upstream_cfg {
  long timeout_ms;
  long connect_timeout_ms;
  long max_retries;
  long max_host_connections;
  long max_inflight_per_account;
  long max_queue_per_account;
  char *ca_file; /* NULL: the system bundle */
};

struct ucrm_credentials {
  char *api_token;     /* pipedrive */
  char *api_key;       /* close */
  char *access_token;  /* all; for salesforce the token currently in use */
  char *refresh_token; /* salesforce */
  char *client_id;
  char *client_secret;
  char *token_url;
  char *api_version; /* salesforce, e.g. "v62.0" */
};

struct ucrm_account {
  char id[37]; /* lower-case UUID */
  const struct ucrm_provider *provider;
  char *base_url; /* scheme://host[:port][/prefix], never with a trailing slash */
  struct ucrm_credentials cred;
  void *runtime;                  /* token refresh state of the core, or NULL */
  void (*runtime_free)(void *rt); /* frees runtime when the config goes away */
  void *gate;                     /* per-account fairness state of the core, or NULL */
  void (*gate_free)(void *g);
  void *headers; /* the core's cached header lines for this account */
  void (*headers_free)(void *h);
};

struct ucrm_config {
  char *listen_host;
  int listen_port;
  struct ucrm_limits limits;
  struct ucrm_upstream_cfg upstream;
  struct ucrm_account *accounts; /* sorted by id */
  size_t naccounts;
  int refs; /* holders: the app while it is current, plus each request using it */
};

/*
 * Parses a config document. On failure returns a negative code and writes into err a message
 * that names the offending key (never its secret value). *out is set only on success.
 */
int ucrm_config_parse(const char *json, size_t len, struct ucrm_config **out, char *err,
                      size_t errlen);
int ucrm_config_load(const char *path, struct ucrm_config **out, char *err, size_t errlen);

/* Finds an account by id (case-insensitive UUID); NULL when unknown. */
struct ucrm_account *ucrm_config_account(const struct ucrm_config *cfg, const char *id);

void ucrm_config_free(struct ucrm_config *cfg);

/* Splits "host:port" or "[v6]:port" into its parts; returns 0 or UCRM_EINVAL. */
int ucrm_config_parse_listen(const char *s, char **host, int *port);

/* Checks "8-4-4-4-12" hex digits. */
int ucrm_is_uuid(const char *s, size_t len);

#endif
