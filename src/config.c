#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "json.h"
#include "provider.h"

#define UCRM_CONFIG_MAX_BYTES (16 * 1024 * 1024)

static int cfg_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int cfg_fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return UCRM_EINVAL;
}

int ucrm_is_uuid(const char *s, size_t len) {
  if (len != 36)
    return 0;

  for (size_t i = 0; i < 36; i++) {
    int dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
      return 0;
  }
  return 1;
}

int ucrm_config_parse_listen(const char *s, char **host, int *port) {
  const char *colon;
  const char *h = s;
  size_t hlen;

  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (close == NULL || close[1] != ':')
      return UCRM_EINVAL;
    h = s + 1;
    hlen = (size_t)(close - h);
    colon = close + 1;
  } else {
    colon = strrchr(s, ':');
    if (colon == NULL)
      return UCRM_EINVAL;
    hlen = (size_t)(colon - s);
  }

  char *end;
  errno = 0;
  long p = strtol(colon + 1, &end, 10);
  if (errno != 0 || *end != '\0' || end == colon + 1 || p < 0 || p > 65535 || hlen == 0)
    return UCRM_EINVAL;

  *host = strndup(h, hlen);
  if (*host == NULL)
    return UCRM_ENOMEM;
  *port = (int)p;
  return 0;
}

/* A number field that must be a non-negative integer within [min, max]. */
static int cfg_long(const struct jv *v, const char *name, long min, long max, long *out, char *err,
                    size_t errlen) {
  if (v->type != JV_NUMBER)
    return cfg_fail(err, errlen, "config key '%s' must be a number", name);

  char *end;
  errno = 0;
  long n = strtol(v->u.str.s, &end, 10);
  if (errno != 0 || *end != '\0' || n < min || n > max)
    return cfg_fail(err, errlen, "config key '%s' must be an integer from %ld to %ld", name, min,
                    max);
  *out = n;
  return 0;
}

struct cfg_num_key {
  const char *name;
  size_t offset;
  long min, max;
};

#define LIM(field, lo, hi)                                                                         \
  { #field, offsetof(struct ucrm_limits, field), lo, hi }
static const struct cfg_num_key cfg_limit_keys[] = {
    LIM(max_connections, 1, 1000000),      LIM(max_header_bytes, 1024, 1048576),
    LIM(max_body_bytes, 1024, 1073741824), LIM(header_timeout_ms, 1, 3600000),
    LIM(idle_timeout_ms, 1, 86400000),     LIM(request_timeout_ms, 1, 3600000),
    LIM(drain_timeout_ms, 0, 3600000),
};
#undef LIM

#define UPS(field, lo, hi)                                                                         \
  { #field, offsetof(struct ucrm_upstream_cfg, field), lo, hi }
static const struct cfg_num_key cfg_upstream_keys[] = {
    UPS(timeout_ms, 1, 3600000),
    UPS(connect_timeout_ms, 1, 600000),
    UPS(max_retries, 0, 10),
    UPS(max_host_connections, 1, 100000),
    UPS(max_inflight_per_account, 1, 100000),
    UPS(max_queue_per_account, 0, 1000000),
};
#undef UPS

static int cfg_numbers(const struct jv *obj, const char *section, const struct cfg_num_key *keys,
                       size_t nkeys, void *base, char *err, size_t errlen, const char *skip) {
  if (obj->type != JV_OBJECT)
    return cfg_fail(err, errlen, "config key '%s' must be an object", section);

  for (size_t i = 0; i < obj->u.obj.n; i++) {
    const struct jv_member *m = &obj->u.obj.m[i];
    if (skip != NULL && strcmp(m->key, skip) == 0)
      continue;

    size_t k = 0;
    while (k < nkeys && strcmp(keys[k].name, m->key) != 0)
      k++;
    if (k == nkeys)
      return cfg_fail(err, errlen, "unknown config key '%s.%s'", section, m->key);

    char name[128];
    snprintf(name, sizeof(name), "%s.%s", section, m->key);
    long *field = (long *)((char *)base + keys[k].offset);
    int rc = cfg_long(m->val, name, keys[k].min, keys[k].max, field, err, errlen);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* Reads a credential string, resolving "env:NAME" from the environment. */
static int cfg_secret(const struct jv *v, const char *name, char **out, char *err, size_t errlen) {
  if (v->type != JV_STRING || v->u.str.len == 0 || strlen(v->u.str.s) != v->u.str.len)
    return cfg_fail(err, errlen, "config key '%s' must be a non-empty string", name);

  const char *val = v->u.str.s;
  if (strncmp(val, "env:", 4) == 0) {
    val = getenv(val + 4);
    if (val == NULL || val[0] == '\0')
      return cfg_fail(err, errlen,
                      "config key '%s' names environment variable '%s', "
                      "which is not set",
                      name, v->u.str.s + 4);
  }

  /* A secret goes into an HTTP header: control bytes would let it split the header. */
  for (const char *p = val; *p != '\0'; p++) {
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      return cfg_fail(err, errlen, "config key '%s' holds a control character", name);
  }

  *out = strdup(val);
  return *out != NULL ? 0 : UCRM_ENOMEM;
}

struct cfg_cred_key {
  const char *name;
  size_t offset;
};

#define CRED(field)                                                                                \
  { #field, offsetof(struct ucrm_credentials, field) }
static const struct cfg_cred_key cfg_cred_keys[] = {
    CRED(api_token), CRED(api_key),       CRED(access_token), CRED(refresh_token),
    CRED(client_id), CRED(client_secret), CRED(token_url),    CRED(api_version),
};
#undef CRED

static int cfg_credentials(const struct jv *obj, const char *prefix, struct ucrm_credentials *c,
                           char *err, size_t errlen) {
  if (obj->type != JV_OBJECT)
    return cfg_fail(err, errlen, "config key '%s.credentials' must be an object", prefix);

  for (size_t i = 0; i < obj->u.obj.n; i++) {
    const struct jv_member *m = &obj->u.obj.m[i];
    size_t k = 0;
    while (k < UCRM_ARRAY_LEN(cfg_cred_keys) && strcmp(cfg_cred_keys[k].name, m->key) != 0)
      k++;

    char name[192];
    snprintf(name, sizeof(name), "%s.credentials.%s", prefix, m->key);
    if (k == UCRM_ARRAY_LEN(cfg_cred_keys))
      return cfg_fail(err, errlen, "unknown config key '%s'", name);

    char **field = (char **)((char *)c + cfg_cred_keys[k].offset);
    free(*field);
    *field = NULL;
    int rc = cfg_secret(m->val, name, field, err, errlen);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int cfg_base_url(const struct jv *v, const char *prefix, char **out, char *err,
                        size_t errlen) {
  if (v->type != JV_STRING)
    return cfg_fail(err, errlen, "config key '%s.base_url' must be a string", prefix);

  const char *s = v->u.str.s;
  size_t len = v->u.str.len;
  size_t scheme = strncmp(s, "https://", 8) == 0 ? 8 : strncmp(s, "http://", 7) == 0 ? 7 : 0;
  int host_ok = scheme > 0 && s[scheme] != '\0' && s[scheme] != '/';
  /* Credentials belong in "credentials": a user:password@ in the URL would show in plans. */
  const char *authority_end = scheme > 0 ? s + scheme + strcspn(s + scheme, "/") : s;
  if (host_ok && memchr(s + scheme, '@', (size_t)(authority_end - (s + scheme))) != NULL)
    host_ok = 0;
  if (!host_ok || strlen(s) != len || len > 1024 || strchr(s, '?') || strchr(s, '#'))
    return cfg_fail(err, errlen,
                    "config key '%s.base_url' must be an http:// or https:// URL "
                    "with a host and without query or fragment",
                    prefix);
  for (size_t i = 0; i < len; i++) {
    if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
      return cfg_fail(err, errlen, "config key '%s.base_url' holds a space or control byte",
                      prefix);
  }

  while (len > 0 && s[len - 1] == '/')
    len--;
  *out = strndup(s, len);
  return *out != NULL ? 0 : UCRM_ENOMEM;
}

static int cfg_account(const char *id, const struct jv *obj, struct ucrm_account *a, char *err,
                       size_t errlen) {
  char prefix[96];
  snprintf(prefix, sizeof(prefix), "integrated_accounts.%s", id);

  if (!ucrm_is_uuid(id, strlen(id)))
    return cfg_fail(err, errlen, "config key '%s' is not a UUID", prefix);
  if (obj->type != JV_OBJECT)
    return cfg_fail(err, errlen, "config key '%s' must be an object", prefix);

  for (size_t i = 0; i < 36; i++)
    a->id[i] = (char)tolower((unsigned char)id[i]);

  const struct jv *creds = NULL;
  const struct jv *base = NULL;
  for (size_t i = 0; i < obj->u.obj.n; i++) {
    const struct jv_member *m = &obj->u.obj.m[i];
    if (strcmp(m->key, "provider") == 0) {
      if (m->val->type != JV_STRING || (a->provider = ucrm_provider_find(m->val->u.str.s)) == NULL)
        return cfg_fail(err, errlen,
                        "config key '%s.provider' must be one of attio, close, "
                        "pipedrive, salesforce",
                        prefix);
    } else if (strcmp(m->key, "base_url") == 0) {
      base = m->val;
    } else if (strcmp(m->key, "credentials") == 0) {
      creds = m->val;
    } else {
      return cfg_fail(err, errlen, "unknown config key '%s.%s'", prefix, m->key);
    }
  }

  if (a->provider == NULL)
    return cfg_fail(err, errlen, "config key '%s.provider' is missing", prefix);
  if (creds == NULL)
    return cfg_fail(err, errlen, "config key '%s.credentials' is missing", prefix);

  int rc = cfg_credentials(creds, prefix, &a->cred, err, errlen);
  if (rc != 0)
    return rc;

  if (base != NULL) {
    rc = cfg_base_url(base, prefix, &a->base_url, err, errlen);
  } else if (a->provider->default_base_url != NULL) {
    a->base_url = strdup(a->provider->default_base_url);
    rc = a->base_url != NULL ? 0 : UCRM_ENOMEM;
  } else {
    rc = cfg_fail(err, errlen, "config key '%s.base_url' is required for %s", prefix,
                  a->provider->name);
  }
  if (rc != 0)
    return rc;

  return a->provider->check_credentials(&a->cred, prefix, err, errlen);
}

static int cfg_account_cmp(const void *a, const void *b) {
  return strcmp(((const struct ucrm_account *)a)->id, ((const struct ucrm_account *)b)->id);
}

static int cfg_accounts(const struct jv *obj, struct ucrm_config *cfg, char *err, size_t errlen) {
  if (obj->type != JV_OBJECT)
    return cfg_fail(err, errlen, "config key 'integrated_accounts' must be an object");

  cfg->accounts = calloc(obj->u.obj.n ? obj->u.obj.n : 1, sizeof(*cfg->accounts));
  if (cfg->accounts == NULL)
    return UCRM_ENOMEM;

  for (size_t i = 0; i < obj->u.obj.n; i++) {
    int rc = cfg_account(obj->u.obj.m[i].key, obj->u.obj.m[i].val, &cfg->accounts[i], err, errlen);
    cfg->naccounts = i + 1;
    if (rc != 0)
      return rc;
  }

  qsort(cfg->accounts, cfg->naccounts, sizeof(*cfg->accounts), cfg_account_cmp);
  for (size_t i = 1; i < cfg->naccounts; i++) {
    if (strcmp(cfg->accounts[i - 1].id, cfg->accounts[i].id) == 0)
      return cfg_fail(err, errlen, "config key 'integrated_accounts.%s' appears twice",
                      cfg->accounts[i].id);
  }
  return 0;
}

static void cfg_defaults(struct ucrm_config *cfg) {
  cfg->listen_port = 8080;
  cfg->limits = (struct ucrm_limits){
      .max_connections = 10000,
      .max_header_bytes = 16384,
      .max_body_bytes = 1048576,
      .header_timeout_ms = 10000,
      .idle_timeout_ms = 60000,
      .request_timeout_ms = 30000,
      .drain_timeout_ms = 30000,
  };
  cfg->upstream = (struct ucrm_upstream_cfg){
      .timeout_ms = 15000,
      .connect_timeout_ms = 3000,
      .max_retries = 2,
      .max_host_connections = 64,
      .max_inflight_per_account = 16,
      .max_queue_per_account = 1024,
  };
}

static int cfg_upstream(const struct jv *obj, struct ucrm_upstream_cfg *up, char *err,
                        size_t errlen) {
  int rc = cfg_numbers(obj, "upstream", cfg_upstream_keys, UCRM_ARRAY_LEN(cfg_upstream_keys), up,
                       err, errlen, "ca_file");
  if (rc != 0)
    return rc;

  const struct jv *ca = jv_obj_get(obj, "ca_file");
  if (ca == NULL || ca->type == JV_NULL)
    return 0;
  if (ca->type != JV_STRING || ca->u.str.len == 0)
    return cfg_fail(err, errlen, "config key 'upstream.ca_file' must be a path or null");

  up->ca_file = strdup(ca->u.str.s);
  return up->ca_file != NULL ? 0 : UCRM_ENOMEM;
}

static int cfg_top(const struct jv *root, struct ucrm_config *cfg, char *err, size_t errlen) {
  if (root->type != JV_OBJECT)
    return cfg_fail(err, errlen, "config must be a JSON object");

  int have_accounts = 0;
  for (size_t i = 0; i < root->u.obj.n; i++) {
    const struct jv_member *m = &root->u.obj.m[i];
    int rc = 0;

    if (strcmp(m->key, "listen") == 0) {
      if (m->val->type != JV_STRING ||
          ucrm_config_parse_listen(m->val->u.str.s, &cfg->listen_host, &cfg->listen_port) != 0)
        rc = cfg_fail(err, errlen, "config key 'listen' must be \"HOST:PORT\"");
    } else if (strcmp(m->key, "limits") == 0) {
      rc = cfg_numbers(m->val, "limits", cfg_limit_keys, UCRM_ARRAY_LEN(cfg_limit_keys),
                       &cfg->limits, err, errlen, NULL);
    } else if (strcmp(m->key, "upstream") == 0) {
      rc = cfg_upstream(m->val, &cfg->upstream, err, errlen);
    } else if (strcmp(m->key, "integrated_accounts") == 0) {
      have_accounts = 1;
      rc = cfg_accounts(m->val, cfg, err, errlen);
    } else {
      rc = cfg_fail(err, errlen, "unknown config key '%s'", m->key);
    }
    if (rc != 0)
      return rc;
  }

  if (!have_accounts)
    return cfg_fail(err, errlen, "config key 'integrated_accounts' is missing");
  if (cfg->listen_host == NULL && (cfg->listen_host = strdup("127.0.0.1")) == NULL)
    return UCRM_ENOMEM;
  return 0;
}

int ucrm_config_parse(const char *json, size_t len, struct ucrm_config **out, char *err,
                      size_t errlen) {
  struct jv *root = NULL;
  char jerr[128];
  if (jv_parse(json, len, 16, &root, jerr, sizeof(jerr)) != 0)
    return cfg_fail(err, errlen, "config is not valid JSON: %s", jerr);

  struct ucrm_config *cfg = calloc(1, sizeof(*cfg));
  if (cfg == NULL) {
    jv_free(root);
    return UCRM_ENOMEM;
  }
  cfg_defaults(cfg);

  int rc = cfg_top(root, cfg, err, errlen);
  jv_free(root);
  if (rc != 0) {
    ucrm_config_free(cfg);
    return rc;
  }
  *out = cfg;
  return 0;
}

int ucrm_config_load(const char *path, struct ucrm_config **out, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return cfg_fail(err, errlen, "cannot open config file '%s': %s", path, strerror(errno));

  char *buf = malloc(UCRM_CONFIG_MAX_BYTES);
  size_t n = buf != NULL ? fread(buf, 1, UCRM_CONFIG_MAX_BYTES, f) : 0;
  int too_big = n == UCRM_CONFIG_MAX_BYTES;
  int failed = ferror(f);
  fclose(f);

  int rc;
  if (buf == NULL)
    rc = UCRM_ENOMEM;
  else if (failed || too_big)
    rc = cfg_fail(err, errlen, "cannot read config file '%s'%s", path,
                  too_big ? ": larger than 16 MiB" : "");
  else
    rc = ucrm_config_parse(buf, n, out, err, errlen);
  free(buf);
  return rc;
}

struct ucrm_account *ucrm_config_account(const struct ucrm_config *cfg, const char *id) {
  char key[37];
  size_t len = strlen(id);
  if (!ucrm_is_uuid(id, len))
    return NULL;

  for (size_t i = 0; i < 36; i++)
    key[i] = (char)tolower((unsigned char)id[i]);
  key[36] = '\0';

  struct ucrm_account probe;
  memcpy(probe.id, key, sizeof(key));
  return bsearch(&probe, cfg->accounts, cfg->naccounts, sizeof(*cfg->accounts), cfg_account_cmp);
}

static void cfg_free_credentials(struct ucrm_credentials *c) {
  for (size_t k = 0; k < UCRM_ARRAY_LEN(cfg_cred_keys); k++) {
    char **field = (char **)((char *)c + cfg_cred_keys[k].offset);
    free(*field);
  }
}

void ucrm_config_free(struct ucrm_config *cfg) {
  if (cfg == NULL)
    return;

  for (size_t i = 0; i < cfg->naccounts; i++) {
    struct ucrm_account *a = &cfg->accounts[i];
    if (a->runtime != NULL)
      a->runtime_free(a->runtime);
    if (a->gate != NULL)
      a->gate_free(a->gate);
    if (a->headers != NULL)
      a->headers_free(a->headers);
    cfg_free_credentials(&a->cred);
    free(a->base_url);
  }
  free(cfg->accounts);
  free(cfg->upstream.ca_file);
  free(cfg->listen_host);
  free(cfg);
}
