/*
 * fuzz_json.c: the jv tree (jv_parse, jv_dump, jv_copy, jv_merge).
 *
 * Whatever jv_parse accepts, jv_dump must write, and the text it writes must parse back and
 * dump to the same bytes: remote_data and provider replies go through this round trip on
 * their way out. A copy dumps like its original, and merging a document into an empty
 * object or into a copy of itself leaves that document unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "json.h"

static char *dump_or_fail(const struct jv *v, size_t *len, const char *what) {
  char *s = jv_dump(v, len);
  if (s == NULL)
    fuzz_fail("jv_dump refused %s", what);
  if (strlen(s) != *len)
    fuzz_fail("jv_dump of %s holds a raw NUL byte", what);
  return s;
}

static void check_same(const char *what, const char *a, size_t alen, const char *b, size_t blen) {
  if (alen == blen && memcmp(a, b, alen) == 0)
    return;
  fuzz_dump_hex("first", a, alen);
  fuzz_dump_hex("second", b, blen);
  fuzz_fail("%s changed the document", what);
}

static void check_merge(const struct jv *v, const char *d1, size_t n1) {
  struct jv *empty = jv_new(JV_OBJECT);
  struct jv *copy = jv_copy(v);
  if (empty == NULL || copy == NULL)
    abort();

  size_t n;
  if (jv_merge(empty, v) != 0)
    fuzz_fail("jv_merge into an empty object failed");
  char *d = dump_or_fail(empty, &n, "a merge into an empty object");
  check_same("jv_merge into an empty object", d1, n1, d, n);
  free(d);

  if (jv_merge(copy, v) != 0)
    fuzz_fail("jv_merge into a copy of itself failed");
  d = dump_or_fail(copy, &n, "a merge into a copy of itself");
  check_same("jv_merge into a copy of itself", d1, n1, d, n);
  free(d);

  jv_free(empty);
  jv_free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct jv *v = NULL;
  char err[128];
  memset(err, 'x', sizeof(err));

  if (jv_parse((const char *)data, size, JV_MAX_DEPTH, &v, err, sizeof(err)) != 0) {
    if (v != NULL || memchr(err, '\0', sizeof(err)) == NULL)
      fuzz_fail("a failed parse left a tree or no message");
    return 0;
  }

  size_t n1, n2, n3;
  char *d1 = dump_or_fail(v, &n1, "a parsed document");

  struct jv *v2 = NULL;
  if (jv_parse(d1, n1, JV_MAX_DEPTH, &v2, err, sizeof(err)) != 0) {
    fuzz_dump_hex("dump", d1, n1);
    fuzz_fail("the dump does not parse back: %s", err);
  }
  char *d2 = dump_or_fail(v2, &n2, "a re-parsed document");
  check_same("the round trip", d1, n1, d2, n2);

  struct jv *c = jv_copy(v);
  if (c == NULL)
    abort();
  char *d3 = dump_or_fail(c, &n3, "a copy");
  check_same("jv_copy", d1, n1, d3, n3);

  if (v->type == JV_OBJECT)
    check_merge(v, d1, n1);

  free(d1);
  free(d2);
  free(d3);
  jv_free(c);
  jv_free(v2);
  jv_free(v);
  return 0;
}
