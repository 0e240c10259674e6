/*
 * Every validation error of SPEC 3.2 and 3.5: the caller gets the JSON envelope with the
 * right status and a message naming the problem, and the provider receives nothing.
 */
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

#define LEAD "adf21080-0e10-11eb-879b-05d71fb426ec"
#define PD_LEAD_BODY(assoc)                                                                        \
  "{\"entity\":\"leads\",\"entity_id\":\"" LEAD "\",\"associations\":" assoc "}"

struct bad {
  const char *name;
  const char *account; /* NULL: no integrated_account_id at all */
  const char *query;
  const char *body;
  long status;
  const char *message_part;
};

static const struct bad cases[] = {
    {"missing account id", NULL, "", PD_LEAD_BODY("{\"contacts\":[{\"id\":\"1\"}]}"), 400,
     "integrated_account_id is required"},
    {"account id not a uuid", "not-a-uuid", "", PD_LEAD_BODY("{\"contacts\":[{\"id\":\"1\"}]}"),
     400, "UUID"},
    {"unknown account", "00000000-0000-4000-8000-000000000000", "",
     PD_LEAD_BODY("{\"contacts\":[{\"id\":\"1\"}]}"), 404, "not configured"},
    {"repeated account id", H_PIPEDRIVE, "&integrated_account_id=" H_PIPEDRIVE,
     PD_LEAD_BODY("{\"contacts\":[{\"id\":\"1\"}]}"), 400, "repeated"},
    {"bad format", H_PIPEDRIVE, "&truto_response_format=xml",
     PD_LEAD_BODY("{\"contacts\":[{\"id\":\"1\"}]}"), 400, "truto_response_format"},
    {"bad boolean", H_PIPEDRIVE, "&truto_ignore_remote_data=yes",
     PD_LEAD_BODY("{\"contacts\":[{\"id\":\"1\"}]}"), 400, "truto_ignore_remote_data"},
    {"malformed remote_query", H_PIPEDRIVE, "&remote_query[a=1",
     PD_LEAD_BODY("{\"contacts\":[{\"id\":\"1\"}]}"), 400, "remote_query"},
    {"remote_query CRLF", H_PIPEDRIVE, "&remote_query[a]=x%0d%0aHost:%20evil",
     PD_LEAD_BODY("{\"contacts\":[{\"id\":\"1\"}]}"), 400, "control character"},
    {"remote_query sets api_token", H_PIPEDRIVE, "&remote_query[api_token]=x",
     PD_LEAD_BODY("{\"contacts\":[{\"id\":\"1\"}]}"), 400, "api_token"},
    {"remote_query sets API_TOKEN", H_PIPEDRIVE, "&remote_query[API_TOKEN]=x",
     PD_LEAD_BODY("{\"contacts\":[{\"id\":\"1\"}]}"), 400, "api_token"},
    {"remote_query nests access_token", H_PIPEDRIVE, "&remote_query[x][access_token]=x",
     PD_LEAD_BODY("{\"contacts\":[{\"id\":\"1\"}]}"), 400, "access_token"},
    {"empty body", H_PIPEDRIVE, "", "", 400, "empty"},
    {"not json", H_PIPEDRIVE, "", "entity=leads", 400, "not valid JSON"},
    {"not an object", H_PIPEDRIVE, "", "[1,2]", 400, "JSON object"},
    {"invalid utf-8", H_PIPEDRIVE, "", "{\"entity\":\"lea\xff\"}", 400, "not valid JSON"},
    {"too deep", H_PIPEDRIVE, "",
     "{\"remote_data\":"
     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]"
     "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
     400, "nesting deeper"},
    {"missing entity_id", H_PIPEDRIVE, "",
     "{\"entity\":\"leads\",\"associations\":{\"contacts\":[{\"id\":\"1\"}]}}", 400,
     "entity_id is required"},
    {"entity_id too long", H_PIPEDRIVE, "",
     "{\"entity\":\"leads\",\"entity_id\":\""
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
     "\"associations\":{\"contacts\":[{\"id\":\"1\"}]}}",
     400, "longer than 256"},
    {"bad entity", H_PIPEDRIVE, "",
     "{\"entity\":\"tickets\",\"entity_id\":\"1\",\"associations\":{\"contacts\":[{\"id\":1}]}}",
     400, "entity must be one of"},
    {"entity the provider lacks", H_PIPEDRIVE, "",
     "{\"entity\":\"accounts\",\"entity_id\":\"1\",\"associations\":"
     "{\"opportunities\":[{\"id\":1}]}}",
     400, "pipedrive does not support entity accounts"},
    {"kind not allowed for entity", H_PIPEDRIVE, "",
     PD_LEAD_BODY("{\"leads\":[{\"id\":\"" LEAD "\"}]}"), 400, "cannot be linked to entity"},
    {"unknown kind", H_PIPEDRIVE, "", PD_LEAD_BODY("{\"tickets\":[{\"id\":\"1\"}]}"), 400,
     "not a known kind"},
    {"no ids", H_PIPEDRIVE, "", PD_LEAD_BODY("{\"contacts\":[]}"), 400, "at least one id"},
    {"id not an object", H_PIPEDRIVE, "", PD_LEAD_BODY("{\"contacts\":[\"1\"]}"), 400,
     "must be an object"},
    {"id a float", H_PIPEDRIVE, "", PD_LEAD_BODY("{\"contacts\":[{\"id\":1.5}]}"), 400,
     "string or an integer"},
    {"single-valued kind with two ids", H_PIPEDRIVE, "",
     PD_LEAD_BODY("{\"contacts\":[{\"id\":\"1\"},{\"id\":\"2\"}]}"), 400, "single-valued"},
    {"pipedrive person id not an integer", H_PIPEDRIVE, "",
     PD_LEAD_BODY("{\"contacts\":[{\"id\":\"12a\"}]}"), 400, "integer id"},
    {"pipedrive lead id not a uuid", H_PIPEDRIVE, "",
     "{\"entity\":\"leads\",\"entity_id\":\"../../v1/users\",\"associations\":"
     "{\"contacts\":[{\"id\":\"1\"}]}}",
     400, "UUID"},
    {"pipedrive organizations on leads", H_PIPEDRIVE, "",
     PD_LEAD_BODY("{\"organizations\":[{\"id\":\"1\"}]}"), 400, "cannot be linked"},
    {"close organizations unsupported", H_CLOSE, "",
     "{\"entity\":\"contacts\",\"entity_id\":\"cont_1\",\"associations\":"
     "{\"organizations\":[{\"id\":\"orga_1\"}]}}",
     400, "unsupported_association: close cannot link contacts to organizations"},
    {"close wrong id prefix", H_CLOSE, "",
     "{\"entity\":\"contacts\",\"entity_id\":\"lead_1\",\"associations\":"
     "{\"leads\":[{\"id\":\"lead_2\"}]}}",
     400, "cont_"},
    {"close leads and accounts disagree", H_CLOSE, "",
     "{\"entity\":\"contacts\",\"entity_id\":\"cont_1\",\"associations\":"
     "{\"leads\":[{\"id\":\"lead_2\"}],\"accounts\":[{\"id\":\"lead_3\"}]}}",
     400, "send one id"},
    {"salesforce leads unsupported", H_SALESFORCE, "",
     "{\"entity\":\"opportunities\",\"entity_id\":\"0065g00000XyZ12AAB\",\"associations\":"
     "{\"leads\":[{\"id\":\"00Q5g00000XyZ12AAB\"}]}}",
     400, "unsupported_association: salesforce cannot link opportunities to leads"},
    {"salesforce bad id", H_SALESFORCE, "",
     "{\"entity\":\"accounts\",\"entity_id\":\"0015g00000AbCdEAAV\",\"associations\":"
     "{\"opportunities\":[{\"id\":\"0065g0000/XyZ12\"}]}}",
     400, "15 or 18"},
    {"attio leads unsupported", H_ATTIO, "",
     "{\"entity\":\"contacts\",\"entity_id\":\"5829dd6c-0577-40dc-a858-8bd9a0d6aa58\","
     "\"associations\":{\"leads\":[{\"id\":\"x\"}]}}",
     400, "unsupported_association: attio cannot link contacts to leads"},
    {"repeated key in the body", H_PIPEDRIVE, "",
     PD_LEAD_BODY("{\"contacts\":[{\"id\":\"1\"}],\"contacts\":[{\"id\":\"2\"}]}"), 400,
     "repeats a key"},
    {"remote_data changing the link", H_PIPEDRIVE, "",
     "{\"entity\":\"leads\",\"entity_id\":\"" LEAD "\",\"associations\":"
     "{\"contacts\":[{\"id\":\"1\"}]},\"remote_data\":{\"person_id\":999}}",
     400, "not change person_id"},
    {"remote_data not an object", H_PIPEDRIVE, "",
     "{\"entity\":\"leads\",\"entity_id\":\"" LEAD "\",\"associations\":"
     "{\"contacts\":[{\"id\":\"1\"}]},\"remote_data\":[1]}",
     400, "remote_data must be an object"},
};

static void test_bad(void **state) {
  const struct bad *c = *state;
  char target[4096];
  snprintf(target, sizeof(target), "/unified/crm/associations?%s%s%s",
           c->account ? "integrated_account_id=" : "", c->account ? c->account : "", c->query);

  struct h_resp r;
  assert_int_equal(h_request(g_fx.unicrm.port, "POST", target, c->body, NULL, &r), 0);
  yajl_val v = fx_expect_error(&r, c->status);
  const char *msg = h_str(v, "message");
  if (strstr(msg, c->message_part) == NULL)
    fprintf(stderr, "%s: message \"%s\" lacks \"%s\"\n", c->name, msg, c->message_part);
  assert_non_null(strstr(msg, c->message_part));
  yajl_tree_free(v);
  h_resp_free(&r);

  /* Nothing may reach the provider for a request we refused. */
  assert_int_equal(h_mock_ncalls(g_fx.mock.port), 0);
}

static void test_body_too_large(void **state) {
  size_t n = 2 * 1024 * 1024;
  char *big = malloc(n + 1);
  memset(big, ' ', n);
  big[0] = '{';
  big[n - 1] = '}';
  big[n] = '\0';

  struct h_resp r;
  h_associate(g_fx.unicrm.port, H_PIPEDRIVE, NULL, big, &r);
  free(big);
  yajl_val v = fx_expect_error(&r, 413);
  yajl_tree_free(v);
  h_resp_free(&r);
  assert_int_equal(h_mock_ncalls(g_fx.mock.port), 0);
}

static void test_headers_too_large(void **state) {
  char *hdr = malloc(40000);
  memset(hdr, 'a', 39999);
  memcpy(hdr, "X-Big: ", 7);
  hdr[39999] = '\0';

  struct h_resp r;
  h_request(g_fx.unicrm.port, "GET", "/healthz", NULL, hdr, &r);
  free(hdr);
  yajl_val v = fx_expect_error(&r, 431);
  yajl_tree_free(v);
  h_resp_free(&r);
}

static void test_unknown_route_and_method(void **state) {
  struct h_resp r;
  h_request(g_fx.unicrm.port, "GET", "/nope", NULL, NULL, &r);
  yajl_tree_free(fx_expect_error(&r, 404));
  h_resp_free(&r);

  h_request(g_fx.unicrm.port, "GET", "/unified/crm/associations", NULL, NULL, &r);
  yajl_tree_free(fx_expect_error(&r, 405));
  char allow[64];
  assert_string_equal(h_header(&r, "Allow", allow, sizeof(allow)), "POST");
  h_resp_free(&r);
}

static void test_healthz(void **state) {
  struct h_resp r;
  h_request(g_fx.unicrm.port, "GET", "/healthz", NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "{\"status\":\"ok\"}");
  h_resp_free(&r);
}

static void test_dry_run_sends_nothing(void **state) {
  struct h_resp r;
  h_associate(g_fx.unicrm.port, H_PIPEDRIVE, "&dry_run=true&remote_query[a][b]=x%20y",
              PD_LEAD_BODY("{\"contacts\":[{\"id\":\"7\"}]}"), &r);
  assert_int_equal(r.status, 200);
  yajl_val v = h_json(r.body);
  assert_string_equal(h_str(v, "plan/0/method"), "PATCH");
  char url[256];
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/leads/" LEAD "?a%%5Bb%%5D=x%%20y",
           g_fx.mock.port);
  assert_string_equal(h_str(v, "plan/0/url"), url);
  assert_int_equal(h_int(v, "plan/0/body/person_id", -1), 7);
  assert_null(strstr(r.body, H_PD_TOKEN));
  yajl_tree_free(v);
  h_resp_free(&r);
  assert_int_equal(h_mock_ncalls(g_fx.mock.port), 0);
}

int main(void) {
  size_t n = sizeof(cases) / sizeof(cases[0]);
  struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0]) + 5];
  for (size_t i = 0; i < n; i++)
    tests[i] = (struct CMUnitTest){cases[i].name, test_bad, fx_reset, NULL, (void *)&cases[i]};
  tests[n++] = (struct CMUnitTest)cmocka_unit_test_setup(test_body_too_large, fx_reset);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test_setup(test_headers_too_large, fx_reset);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test_setup(test_unknown_route_and_method, fx_reset);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test_setup(test_healthz, fx_reset);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test_setup(test_dry_run_sends_nothing, fx_reset);
  return _cmocka_run_group_tests("validation", tests, n, fx_group_setup, fx_group_teardown);
}
