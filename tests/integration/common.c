#include "common.h"

#include <stdio.h>
#include <stdlib.h>

struct fx g_fx;

int fx_start(const char *extra) {
  memset(&g_fx, 0, sizeof(g_fx));
  if (h_mock_start(&g_fx.mock) != 0)
    return -1;
  if (h_unicrm_start(&g_fx.unicrm, g_fx.mock.port, extra) != 0) {
    h_stop(&g_fx.mock);
    return -1;
  }
  return 0;
}

int fx_group_setup(void **state) {
  return fx_start(NULL);
}

int fx_group_teardown(void **state) {
  int rc = h_stop(&g_fx.unicrm);
  h_stop(&g_fx.mock);
  if (rc != 0)
    fprintf(stderr, "unicrm exited with %d; log: %s\n", rc, g_fx.unicrm.log_path);
  return rc == 0 ? 0 : -1;
}

int fx_reset(void **state) {
  return h_mock_reset(g_fx.mock.port);
}

yajl_val fx_expect_error(const struct h_resp *r, long status) {
  if (r->status != status)
    fprintf(stderr, "unexpected answer %ld: %s\n", r->status, r->body);
  assert_int_equal(r->status, status);

  yajl_val v = h_json(r->body);
  assert_non_null(v);
  assert_int_equal(h_int(v, "statusCode", -1), status);
  assert_non_null(h_str(v, "error"));
  assert_non_null(h_str(v, "message"));
  return v;
}

yajl_val fx_expect_calls(size_t n) {
  yajl_val calls = h_mock_calls(g_fx.mock.port);
  assert_non_null(calls);
  assert_true(YAJL_IS_ARRAY(calls));
  if (calls->u.array.len != n)
    fprintf(stderr, "mock received %zu calls, expected %zu\n", calls->u.array.len, n);
  assert_int_equal(calls->u.array.len, n);
  return calls;
}

void fx_expect_call(yajl_val calls, size_t i, const char *method, const char *path,
                    const char *body) {
  char p[32];
  snprintf(p, sizeof(p), "%zu/method", i);
  assert_string_equal(h_str(calls, p), method);
  snprintf(p, sizeof(p), "%zu/path", i);
  assert_string_equal(h_str(calls, p), path);
  if (body != NULL) {
    snprintf(p, sizeof(p), "%zu/body", i);
    assert_string_equal(h_str(calls, p), body);
  }
}
