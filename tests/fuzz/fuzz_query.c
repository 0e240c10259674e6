/*
 * fuzz_query.c: the query string of POST /unified/crm/associations (ucrm_query_parse).
 *
 * remote_qs is appended verbatim to every upstream URL, so whatever a client sends, it may
 * only hold unreserved bytes, complete %XX escapes, '=' and '&'. Anything else (a raw space,
 * CR, LF, NUL, '#', '?') would let a client add a header line, cut the URL or add parameters
 * the proxy sets itself. The decoded pairs must also be free of control bytes (SPEC B.5).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "query.h"

/* Checks one "key=value" pair of remote_qs; key and value are already known to be encoded. */
static void check_remote_pair(const char *p, size_t len) {
  const char *eq = memchr(p, '=', len);
  if (eq == NULL || eq == p)
    fuzz_fail("remote_qs pair '%.*s' is not key=value", (int)len, p);
  if (memchr(eq + 1, '=', len - (size_t)(eq + 1 - p)) != NULL)
    fuzz_fail("remote_qs pair '%.*s' holds a second raw '='", (int)len, p);

  /* The decoded key and value must not hold a control byte. */
  for (size_t i = 0; i < len; i++) {
    if (p[i] != '%')
      continue;
    int c = fuzz_hex((unsigned char)p[i + 1]) * 16 + fuzz_hex((unsigned char)p[i + 2]);
    if (c < 0x20 || c == 0x7f)
      fuzz_fail("remote_qs pair '%.*s' decodes to control byte 0x%02x", (int)len, p, c);
    i += 2;
  }

  size_t klen = (size_t)(eq - p);
  if (klen == strlen("api_token") && memcmp(p, "api_token", klen) == 0)
    fuzz_fail("remote_qs sets api_token, which the proxy owns");
}

static void check_remote(const struct ucrm_query *q) {
  if (q->remote_qs == NULL) {
    if (q->nremote != 0)
      fuzz_fail("nremote is %zu but remote_qs is NULL", q->nremote);
    return;
  }

  const char *s = q->remote_qs;
  size_t len = strlen(s);
  size_t bad = fuzz_encoded_upto(s, len, "=&");
  if (bad != len) {
    fuzz_dump_hex("remote_qs", s, len);
    fuzz_fail("remote_qs byte %zu (0x%02x) is not unreserved, %%XX, '=' or '&'", bad,
              (unsigned char)s[bad]);
  }

  size_t pairs = 0;
  for (const char *p = s;;) {
    const char *amp = strchr(p, '&');
    size_t plen = amp != NULL ? (size_t)(amp - p) : strlen(p);
    check_remote_pair(p, plen);
    pairs++;
    if (amp == NULL)
      break;
    p = amp + 1;
  }
  if (pairs != q->nremote)
    fuzz_fail("remote_qs holds %zu pairs but nremote is %zu", pairs, q->nremote);
  if (q->nremote > UCRM_REMOTE_QUERY_MAX_PARAMS)
    fuzz_fail("nremote %zu is over the cap", q->nremote);
}

static void check_success(const struct ucrm_query *q) {
  if ((unsigned)q->format > UCRM_FMT_STREAM)
    fuzz_fail("format %d is out of range", (int)q->format);
  if (q->nexclude > UCRM_QUERY_MAX_EXCLUDE)
    fuzz_fail("nexclude %zu is over the cap", q->nexclude);
  for (size_t i = 0; i < q->nexclude; i++) {
    if (q->exclude[i] == NULL || q->exclude[i][0] == '\0')
      fuzz_fail("exclude[%zu] is empty", i);
  }
  check_remote(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct ucrm_query q;
  struct ucrm_err err = {0};

  if (ucrm_query_parse((const char *)data, size, &q, &err) == 0) {
    check_success(&q);
  } else {
    if (err.status != 400 && err.status != 500)
      fuzz_fail("a failed parse answers status %d", err.status);
    if (memchr(err.msg, '\0', sizeof(err.msg)) == NULL || err.msg[0] == '\0')
      fuzz_fail("a failed parse leaves no message");
  }

  /* A failed parse may still own strings, so the struct is always freed. */
  ucrm_query_free(&q);
  return 0;
}
