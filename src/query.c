#include "query.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"

static const char *const query_formats[] = {"unified", "raw", "normalized", "stream"};

const char *ucrm_format_name(enum ucrm_format f) {
  return query_formats[f];
}

static int query_hex(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decodes %XX and '+' once into a new string; a malformed escape fails. */
static char *query_decode(const char *s, size_t len, size_t *outlen) {
  char *out = malloc(len + 1);
  if (out == NULL)
    return NULL;

  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '+') {
      out[o++] = ' ';
    } else if (s[i] != '%') {
      out[o++] = s[i];
    } else if (i + 2 < len && query_hex(s[i + 1]) >= 0 && query_hex(s[i + 2]) >= 0) {
      out[o++] = (char)(query_hex(s[i + 1]) * 16 + query_hex(s[i + 2]));
      i += 2;
    } else {
      free(out);
      return NULL;
    }
  }
  out[o] = '\0';
  *outlen = o;
  return out;
}

static int query_has_ctl(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      return 1;
  }
  return 0;
}

static int query_bool(const char *name, const char *v, int *out, struct ucrm_err *err) {
  if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
    *out = 1;
  else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
    *out = 0;
  else
    return ucrm_err_set(err, 400, "%s must be true, false, 1 or 0", name);
  return 0;
}

static int query_scalar_once(const char *name, unsigned bit, unsigned *seen, struct ucrm_err *err) {
  if (*seen & bit)
    return ucrm_err_set(err, 400, "query parameter %s is repeated", name);
  *seen |= bit;
  return 0;
}

static int query_exclude_add(struct ucrm_query *q, const char *s, size_t len,
                             struct ucrm_err *err) {
  if (len == 0)
    return 0;
  if (q->nexclude == UCRM_QUERY_MAX_EXCLUDE)
    return ucrm_err_set(err, 400, "truto_exclude_fields names more than %d fields",
                        UCRM_QUERY_MAX_EXCLUDE);
  if ((q->exclude[q->nexclude] = strndup(s, len)) == NULL)
    return ucrm_err_set(err, 500, "out of memory");
  q->nexclude++;
  return 0;
}

static int query_exclude_list(struct ucrm_query *q, const char *v, struct ucrm_err *err) {
  for (const char *p = v;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
    int rc = query_exclude_add(q, p, len, err);
    if (rc != 0 || comma == NULL)
      return rc;
    p = comma + 1;
  }
}

/*
 * Credentials are unicrm's to send: no segment of a remote_query key may name one, whatever its
 * case or depth (remote_query[API_TOKEN], remote_query[x][access_token]).
 */
static int query_reserved(const char *key) {
  static const char *const names[] = {"api_token", "access_token"};
  for (const char *p = strchr(key, '['); p != NULL; p = strchr(p + 1, '[')) {
    size_t len = strcspn(p + 1, "]");
    for (size_t i = 0; i < UCRM_ARRAY_LEN(names); i++) {
      if (len == strlen(names[i]) && strncasecmp(p + 1, names[i], len) == 0)
        return 1;
    }
  }
  return 0;
}

/*
 * Re-encodes remote_query[a][b][]=v as a%5Bb%5D%5B%5D=v: every segment and value is
 * percent-encoded outside the unreserved set, so nothing a client sends can add a parameter,
 * a fragment or a header line upstream.
 */
static int query_remote(struct ucrm_query *q, struct ubuf *out, const char *key, const char *v,
                        size_t vlen, struct ucrm_err *err) {
  const char *p = key + strlen("remote_query");
  int depth = 0;
  struct ubuf k;
  ubuf_init(&k, 4096);

  while (*p == '[') {
    const char *end = strchr(p, ']');
    if (end == NULL)
      break;
    size_t seglen = (size_t)(end - p - 1);
    int last = end[1] == '\0';
    if ((seglen == 0 && (depth == 0 || !last)) || memchr(p + 1, '[', seglen) != NULL)
      break;
    if (++depth > UCRM_REMOTE_QUERY_MAX_DEPTH) {
      ubuf_free(&k);
      return ucrm_err_set(err, 400, "remote_query nests deeper than %d levels",
                          UCRM_REMOTE_QUERY_MAX_DEPTH);
    }
    if (depth > 1)
      ubuf_puts(&k, "%5B");
    ubuf_append_pct(&k, p + 1, seglen);
    if (depth > 1)
      ubuf_puts(&k, "%5D");
    p = end + 1;
  }

  if (*p != '\0' || depth == 0) {
    ubuf_free(&k);
    return ucrm_err_set(err, 400, "malformed remote_query key; use remote_query[name]=value");
  }

  int reserved = query_reserved(key);
  if (reserved || query_has_ctl(v, vlen) || query_has_ctl(key, strlen(key))) {
    ubuf_free(&k);
    return ucrm_err_set(err, 400,
                        reserved ? "remote_query may not set api_token or access_token"
                                 : "remote_query holds a control character");
  }
  if (++q->nremote > UCRM_REMOTE_QUERY_MAX_PARAMS) {
    ubuf_free(&k);
    return ucrm_err_set(err, 400, "remote_query has more than %d parameters",
                        UCRM_REMOTE_QUERY_MAX_PARAMS);
  }

  int rc = out->len > 0 ? ubuf_putc(out, '&') : 0;
  rc = rc != 0 ? rc : ubuf_append(out, k.data, k.len);
  rc = rc != 0 ? rc : ubuf_putc(out, '=');
  rc = rc != 0 ? rc : ubuf_append_pct(out, v, vlen);
  ubuf_free(&k);
  return rc != 0 ? ucrm_err_set(err, 400, "remote_query is too long") : 0;
}

enum { Q_ACCOUNT = 1, Q_FORMAT = 2, Q_IGNORE = 4, Q_DRY = 8, Q_EXCL = 16 };

static int query_param(struct ucrm_query *q, unsigned *seen, struct ubuf *remote, const char *k,
                       const char *v, size_t vlen, struct ucrm_err *err) {
  int rc = 0;

  if (strcmp(k, "integrated_account_id") == 0) {
    rc = query_scalar_once(k, Q_ACCOUNT, seen, err);
    if (rc == 0 && (q->account_id = strdup(v)) == NULL)
      rc = ucrm_err_set(err, 500, "out of memory");
  } else if (strcmp(k, "truto_response_format") == 0) {
    rc = query_scalar_once(k, Q_FORMAT, seen, err);
    size_t f = 0;
    while (rc == 0 && f < UCRM_ARRAY_LEN(query_formats) && strcmp(v, query_formats[f]) != 0)
      f++;
    if (rc == 0 && f == UCRM_ARRAY_LEN(query_formats))
      rc = ucrm_err_set(err, 400,
                        "truto_response_format must be unified, raw, normalized or "
                        "stream");
    q->format = (enum ucrm_format)f;
  } else if (strcmp(k, "truto_ignore_remote_data") == 0) {
    rc = query_scalar_once(k, Q_IGNORE, seen, err);
    rc = rc != 0 ? rc : query_bool(k, v, &q->ignore_remote_data, err);
  } else if (strcmp(k, "dry_run") == 0) {
    rc = query_scalar_once(k, Q_DRY, seen, err);
    rc = rc != 0 ? rc : query_bool(k, v, &q->dry_run, err);
  } else if (strcmp(k, "truto_exclude_fields") == 0) {
    rc = query_scalar_once(k, Q_EXCL, seen, err);
    rc = rc != 0 ? rc : query_exclude_list(q, v, err);
  } else if (strncmp(k, "truto_exclude_fields[", 21) == 0) {
    size_t digits = strspn(k + 21, "0123456789");
    if (strcmp(k + 21 + digits, "]") != 0)
      rc = ucrm_err_set(err, 400,
                        "malformed truto_exclude_fields key; use "
                        "truto_exclude_fields[]=field");
    rc = rc != 0 ? rc : query_exclude_add(q, v, vlen, err);
  } else if (strncmp(k, "remote_query", 12) == 0) {
    rc = query_remote(q, remote, k, v, vlen, err);
  }
  return rc;
}

static int query_pair(struct ucrm_query *q, unsigned *seen, struct ubuf *remote, const char *s,
                      size_t len, struct ucrm_err *err) {
  const char *eq = memchr(s, '=', len);
  size_t klen = eq != NULL ? (size_t)(eq - s) : len;
  const char *vs = eq != NULL ? eq + 1 : s + len;
  size_t vslen = len - klen - (eq != NULL);

  size_t kdl, vdl;
  char *k = query_decode(s, klen, &kdl);
  char *v = query_decode(vs, vslen, &vdl);
  int rc;
  if (k == NULL || v == NULL)
    rc = ucrm_err_set(err, 400, "query string has a malformed percent escape");
  else if (strlen(k) != kdl || (strlen(v) != vdl && strncmp(k, "remote_query", 12) != 0))
    rc = ucrm_err_set(err, 400, "query string holds a NUL byte");
  else
    rc = query_param(q, seen, remote, k, v, vdl, err);

  free(k);
  free(v);
  return rc;
}

int ucrm_query_parse(const char *qs, size_t len, struct ucrm_query *q, struct ucrm_err *err) {
  memset(q, 0, sizeof(*q));

  struct ubuf remote;
  ubuf_init(&remote, 16384);
  unsigned seen = 0;
  int rc = 0;

  for (size_t i = 0; rc == 0 && i < len;) {
    const char *amp = memchr(qs + i, '&', len - i);
    size_t plen = amp != NULL ? (size_t)(amp - (qs + i)) : len - i;
    if (plen > 0)
      rc = query_pair(q, &seen, &remote, qs + i, plen, err);
    i += plen + 1;
  }

  if (rc == 0 && remote.len > 0)
    q->remote_qs = ubuf_steal(&remote, NULL);
  ubuf_free(&remote);
  return rc;
}

void ucrm_query_free(struct ucrm_query *q) {
  free(q->account_id);
  for (size_t i = 0; i < q->nexclude; i++)
    free(q->exclude[i]);
  free(q->remote_qs);
  memset(q, 0, sizeof(*q));
}
