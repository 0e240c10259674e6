/*
 * Running it as a service: the Prometheus scrape moves with traffic (scrape, act, scrape),
 * the access log holds every field, and per-account fairness queues then refuses.
 */
#include <stdio.h>
#include <stdlib.h>

#include <curl/curl.h>

#include "common.h"

#define LEAD "adf21080-0e10-11eb-879b-05d71fb426ec"
#define PD_LEAD_BODY                                                                               \
  "{\"entity\":\"leads\",\"entity_id\":\"" LEAD "\",\"associations\":"                             \
  "{\"contacts\":[{\"id\":\"9\"}]}}"

static int group_setup(void **state) {
  return fx_start("\"upstream\":{\"max_inflight_per_account\":1,\"max_queue_per_account\":1},");
}

/* The value of one sample line ("name{labels} value"), or -1 when absent. */
static double sample(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *p = text; p != NULL && *p != '\0';) {
    if (strncmp(p, series, n) == 0 && p[n] == ' ')
      return atof(p + n + 1);
    p = strchr(p, '\n');
    p = p != NULL ? p + 1 : NULL;
  }
  return -1;
}

static char *scrape(void) {
  struct h_resp r;
  h_request(g_fx.unicrm.port, "GET", "/metrics", NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  char ct[64];
  assert_non_null(strstr(h_header(&r, "Content-Type", ct, sizeof(ct)), "text/plain"));
  free(r.headers);
  return r.body;
}

/* Every line is a comment or "name{labels} number": what a Prometheus parser accepts. */
static void assert_exposition(const char *text) {
  for (const char *p = text; *p != '\0';) {
    const char *nl = strchr(p, '\n');
    assert_non_null(nl);
    if (*p != '#') {
      const char *sp = memchr(p, ' ', (size_t)(nl - p));
      assert_non_null(sp);
      char *end;
      strtod(sp + 1, &end);
      assert_ptr_equal(end, nl);
      const char *brace = memchr(p, '{', (size_t)(sp - p));
      if (brace != NULL)
        assert_int_equal(sp[-1], '}');
    }
    p = nl + 1;
  }
}

static void test_metrics_move(void **state) {
  const char *req = "unicrm_requests_total{route=\"associations\",format=\"unified\","
                    "status=\"201\"}";
  const char *call = "unicrm_provider_calls_total{provider=\"pipedrive\",method=\"PATCH\","
                     "status=\"200\"}";
  const char *retry = "unicrm_retries_total{provider=\"pipedrive\"}";
  const char *hist = "unicrm_provider_call_duration_seconds_count{provider=\"pipedrive\"}";

  char *before = scrape();
  assert_exposition(before);
  double r0 = sample(before, req), c0 = sample(before, call), t0 = sample(before, retry);
  double h0 = sample(before, hist);

  assert_int_equal(h_mock_post(g_fx.mock.port, "/_mock/faults",
                               "{\"path_prefix\":\"/v1/leads/\",\"status\":503}"),
                   0);
  struct h_resp r;
  h_associate(g_fx.unicrm.port, H_PIPEDRIVE, NULL, PD_LEAD_BODY, &r);
  assert_int_equal(r.status, 201);
  h_resp_free(&r);

  char *after = scrape();
  assert_exposition(after);
  assert_true(sample(after, req) == (r0 < 0 ? 0 : r0) + 1);
  assert_true(sample(after, call) == (c0 < 0 ? 0 : c0) + 1);
  assert_true(sample(after, retry) == (t0 < 0 ? 0 : t0) + 1);
  assert_true(sample(after, hist) == (h0 < 0 ? 0 : h0) + 2);
  assert_true(sample(after, "unicrm_provider_calls_total{provider=\"pipedrive\",method=\"PATCH\","
                            "status=\"503\"}") >= 1);
  assert_true(sample(after, "unicrm_open_connections") >= 1);
  assert_non_null(strstr(after, "unicrm_build_info{version="));
  assert_non_null(strstr(after, "unicrm_queue_depth"));
  assert_non_null(strstr(after, "unicrm_inflight_calls{provider=\"pipedrive\"} 0"));
  /* No account id or record id ever becomes a label. */
  assert_null(strstr(after, H_PIPEDRIVE));
  assert_null(strstr(after, LEAD));
  free(before);
  free(after);
}

static void test_access_log_fields(void **state) {
  struct h_resp r;
  h_request(g_fx.unicrm.port, "POST",
            "/unified/crm/associations?integrated_account_id=" H_PIPEDRIVE
            "&truto_response_format=normalized&remote_query[secretish]=zzz",
            PD_LEAD_BODY, "X-Request-Id: logcheck-1", &r);
  assert_int_equal(r.status, 201);
  h_resp_free(&r);
  assert_true(h_file_wait(g_fx.unicrm.log_path,
                          "comp=access req_id=logcheck-1 method=POST "
                          "path=/unified/crm/associations status=201 format=normalized "
                          "provider=pipedrive provider_calls=1 retries=0 dur_ms=",
                          2000));
  assert_false(h_file_contains(g_fx.unicrm.log_path, "zzz"));       /* no query value */
  assert_false(h_file_contains(g_fx.unicrm.log_path, "entity_id")); /* no body */
}

static size_t discard(char *p, size_t size, size_t n, void *userp) {
  return size * n;
}

/* One slot, one queue place: of three simultaneous requests, one is refused with 429. */
static void test_fairness_queue_then_refuse(void **state) {
  assert_int_equal(h_mock_post(g_fx.mock.port, "/_mock/faults",
                               "{\"path_prefix\":\"/v1/leads/\",\"delay_ms\":400,\"times\":-1}"),
                   0);
  char url[256];
  snprintf(url, sizeof(url),
           "http://127.0.0.1:%d/unified/crm/associations?integrated_account_id=" H_PIPEDRIVE,
           g_fx.unicrm.port);
  enum { N = 3 };
  CURLM *m = curl_multi_init();
  CURL *e[N];
  for (int i = 0; i < N; i++) {
    e[i] = curl_easy_init();
    curl_easy_setopt(e[i], CURLOPT_URL, url);
    curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, PD_LEAD_BODY);
    curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, discard);
    curl_multi_add_handle(m, e[i]);
  }
  int running = 1;
  while (running) {
    curl_multi_perform(m, &running);
    curl_multi_wait(m, NULL, 0, 50, NULL);
  }
  int ok = 0, refused = 0;
  for (int i = 0; i < N; i++) {
    long st = 0;
    curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &st);
    ok += st == 201;
    refused += st == 429;
    curl_multi_remove_handle(m, e[i]);
    curl_easy_cleanup(e[i]);
  }
  curl_multi_cleanup(m);
  assert_int_equal(ok, 2);
  assert_int_equal(refused, 1);
  /* The refused request never reached the provider. */
  assert_int_equal(h_mock_ncalls(g_fx.mock.port), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_metrics_move, fx_reset),
      cmocka_unit_test_setup(test_access_log_fields, fx_reset),
      cmocka_unit_test_setup(test_fairness_queue_then_refuse, fx_reset),
  };
  return cmocka_run_group_tests_name("service", tests, group_setup, fx_group_teardown);
}
