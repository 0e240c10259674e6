/*
 * Every row of SPEC 3.3 as a real exchange: the unified request goes in, and the mock must
 * have received exactly the provider calls written in the spec, with the right credentials.
 */
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

#define LEAD "adf21080-0e10-11eb-879b-05d71fb426ec"
#define LEAD2 "bdf21080-0e10-11eb-879b-05d71fb426ec"
#define CONT "cont_sNIdBgngvbdTTEN1mspKgUqKAWfbul4IITvnWoRw1T7"
#define OPPO "oppo_KXyJj2PT74U1wOPvhBDO37jCC89mmrnoW0DylcDDWrL"
#define OPPO2 "oppo_2XyJj2PT74U1wOPvhBDO37jCC89mmrnoW0DylcDDWrL"
#define CLEAD "lead_QyNaWw4fdSwxl5Mc5daMFf3Y27PpIcH0awPbC9l7uyo"
#define PERSON "5829dd6c-0577-40dc-a858-8bd9a0d6aa58"
#define COMPANY "97052eb9-e65e-443f-a297-f2d9a4a7f795"
#define DEAL "bf071e1f-6035-429d-b874-d83ea64ea13b"
#define DEAL2 "0f3c2a9e-7f0b-4f7e-9f7e-1c2d3e4f5a6b"
#define SF_ACC "0015g00000AbCdEAAV"
#define SF_OPP "0065g00000XyZ12AAB"
#define SF_OPP2 "0065g00000XyZ13AAB"

struct row_call {
  const char *method;
  const char *path;
  const char *body;
};

struct row {
  const char *name;
  const char *account;
  const char *body;
  struct row_call calls[4];
  const char *auth_header; /* expected credential header "name: value", lower-case name */
};

static const struct row rows[] = {
    {"pipedrive leads -> contacts + accounts, one PATCH",
     H_PIPEDRIVE,
     "{\"entity\":\"leads\",\"entity_id\":\"" LEAD "\",\"associations\":"
     "{\"contacts\":[{\"id\":\"123\"}],\"accounts\":[{\"id\":456}]}}",
     {{"PATCH", "/v1/leads/" LEAD, "{\"person_id\":123,\"organization_id\":456}"}},
     "x-api-token: " H_PD_TOKEN},
    {"pipedrive leads -> accounts via acocunts alias",
     H_PIPEDRIVE,
     "{\"entity\":\"leads\",\"entity_id\":\"" LEAD "\",\"associations\":"
     "{\"acocunts\":[{\"id\":\"456\"}]}}",
     {{"PATCH", "/v1/leads/" LEAD, "{\"organization_id\":456}"}},
     "x-api-token: " H_PD_TOKEN},
    {"pipedrive contacts -> leads, one PATCH per lead",
     H_PIPEDRIVE,
     "{\"entity\":\"contacts\",\"entity_id\":\"42\",\"associations\":"
     "{\"leads\":[{\"id\":\"" LEAD "\"},{\"id\":\"" LEAD2 "\"},{\"id\":\"" LEAD "\"}]}}",
     {{"PATCH", "/v1/leads/" LEAD, "{\"person_id\":42}"},
      {"PATCH", "/v1/leads/" LEAD2, "{\"person_id\":42}"}},
     "x-api-token: " H_PD_TOKEN},
    {"pipedrive contacts -> opportunities, v2 deals",
     H_PIPEDRIVE,
     "{\"entity\":\"contacts\",\"entity_id\":42,\"associations\":"
     "{\"opportunities\":[{\"id\":\"77\"},{\"id\":\"78\"}]}}",
     {{"PATCH", "/api/v2/deals/77", "{\"person_id\":42}"},
      {"PATCH", "/api/v2/deals/78", "{\"person_id\":42}"}},
     "x-api-token: " H_PD_TOKEN},
    {"pipedrive contacts -> organizations, v2 person",
     H_PIPEDRIVE_OAUTH,
     "{\"entity\":\"contacts\",\"entity_id\":\"42\",\"associations\":"
     "{\"organizations\":[{\"id\":\"456\"}],\"accounts\":[{\"id\":\"456\"}]}}",
     {{"PATCH", "/api/v2/persons/42", "{\"org_id\":456}"}},
     "authorization: Bearer pd-oauth-token"},
    {"pipedrive remote_data deep-merged",
     H_PIPEDRIVE,
     "{\"entity\":\"contacts\",\"entity_id\":\"42\",\"associations\":"
     "{\"accounts\":[{\"id\":\"456\"}]},\"remote_data\":{\"visible_to\":3,"
     "\"custom_fields\":{\"a\":1}}}",
     {{"PATCH", "/api/v2/persons/42",
       "{\"org_id\":456,\"visible_to\":3,\"custom_fields\":{\"a\":1}}"}},
     "x-api-token: " H_PD_TOKEN},
    {"close opportunities -> leads",
     H_CLOSE,
     "{\"entity\":\"opportunities\",\"entity_id\":\"" OPPO "\",\"associations\":"
     "{\"leads\":[{\"id\":\"" CLEAD "\"}]}}",
     {{"PUT", "/api/v1/opportunity/" OPPO "/", "{\"lead_id\":\"" CLEAD "\"}"}},
     "authorization: Basic Y2xvc2UtdGVzdC1rZXk6"},
    {"close contacts -> accounts is the contact's lead",
     H_CLOSE,
     "{\"entity\":\"contacts\",\"entity_id\":\"" CONT "\",\"associations\":"
     "{\"accounts\":[{\"id\":\"" CLEAD "\"}]}}",
     {{"PUT", "/api/v1/contact/" CONT "/", "{\"lead_id\":\"" CLEAD "\"}"}},
     "authorization: Basic Y2xvc2UtdGVzdC1rZXk6"},
    {"close contacts -> opportunities, one PUT each",
     H_CLOSE_BEARER,
     "{\"entity\":\"contacts\",\"entity_id\":\"" CONT "\",\"associations\":"
     "{\"opportunities\":[{\"id\":\"" OPPO "\"},{\"id\":\"" OPPO2 "\"}]}}",
     {{"PUT", "/api/v1/opportunity/" OPPO "/", "{\"contact_id\":\"" CONT "\"}"},
      {"PUT", "/api/v1/opportunity/" OPPO2 "/", "{\"contact_id\":\"" CONT "\"}"}},
     "authorization: Bearer close-oauth-token"},
    {"attio accounts -> opportunities appends with PATCH",
     H_ATTIO,
     "{\"entity\":\"accounts\",\"entity_id\":\"" COMPANY "\",\"associations\":"
     "{\"opportunities\":[{\"id\":\"" DEAL "\"},{\"id\":\"" DEAL2 "\"}]}}",
     {{"PATCH", "/v2/objects/companies/records/" COMPANY,
       "{\"data\":{\"values\":{\"associated_deals\":[{\"target_object\":\"deals\","
       "\"target_record_id\":\"" DEAL "\"},{\"target_object\":\"deals\","
       "\"target_record_id\":\"" DEAL2 "\"}]}}}"}},
     "authorization: Bearer " H_ATTIO_TOKEN},
    {"attio opportunities -> organizations",
     H_ATTIO,
     "{\"entity\":\"opportunities\",\"entity_id\":\"" DEAL "\",\"associations\":"
     "{\"organizations\":[{\"id\":\"" COMPANY "\"}]}}",
     {{"PATCH", "/v2/objects/deals/records/" DEAL,
       "{\"data\":{\"values\":{\"associated_company\":[{\"target_object\":\"companies\","
       "\"target_record_id\":\"" COMPANY "\"}]}}}"}},
     "authorization: Bearer " H_ATTIO_TOKEN},
    {"attio contacts -> opportunities and accounts in one PATCH",
     H_ATTIO,
     "{\"entity\":\"contacts\",\"entity_id\":\"" PERSON "\",\"associations\":"
     "{\"opportunities\":[{\"id\":\"" DEAL "\"}],\"accounts\":[{\"id\":\"" COMPANY "\"}]}}",
     {{"PATCH", "/v2/objects/people/records/" PERSON,
       "{\"data\":{\"values\":{\"associated_deals\":[{\"target_object\":\"deals\","
       "\"target_record_id\":\"" DEAL "\"}],\"company\":[{\"target_object\":\"companies\","
       "\"target_record_id\":\"" COMPANY "\"}]}}}"}},
     "authorization: Bearer " H_ATTIO_TOKEN},
    {"salesforce accounts -> one opportunity",
     H_SALESFORCE,
     "{\"entity\":\"accounts\",\"entity_id\":\"" SF_ACC "\",\"associations\":"
     "{\"opportunities\":[{\"id\":\"" SF_OPP "\"}]}}",
     {{"PATCH", "/services/data/v62.0/sobjects/Opportunity/" SF_OPP,
       "{\"AccountId\":\"" SF_ACC "\"}"}},
     "authorization: Bearer " H_SF_TOKEN},
    {"salesforce accounts -> two opportunities, one collection",
     H_SALESFORCE,
     "{\"entity\":\"accounts\",\"entity_id\":\"" SF_ACC "\",\"associations\":"
     "{\"opportunities\":[{\"id\":\"" SF_OPP "\"},{\"id\":\"" SF_OPP2 "\"}]}}",
     {{"PATCH", "/services/data/v62.0/composite/sobjects",
       "{\"allOrNone\":true,\"records\":[{\"attributes\":{\"type\":\"Opportunity\"},"
       "\"id\":\"" SF_OPP "\",\"AccountId\":\"" SF_ACC "\"},{\"attributes\":"
       "{\"type\":\"Opportunity\"},\"id\":\"" SF_OPP2 "\",\"AccountId\":\"" SF_ACC "\"}]}"}},
     "authorization: Bearer " H_SF_TOKEN},
    {"salesforce opportunities -> organizations, configured version",
     H_SALESFORCE_NOREFRESH,
     "{\"entity\":\"opportunities\",\"entity_id\":\"" SF_OPP "\",\"associations\":"
     "{\"organizations\":[{\"id\":\"" SF_ACC "\"}]}}",
     {{"PATCH", "/services/data/v60.0/sobjects/Opportunity/" SF_OPP,
       "{\"AccountId\":\"" SF_ACC "\"}"}},
     "authorization: Bearer " H_SF_TOKEN},
};

static size_t row_ncalls(const struct row *r) {
  size_t n = 0;
  while (n < 4 && r->calls[n].method != NULL)
    n++;
  return n;
}

static void row_check_auth(yajl_val calls, size_t i, const char *expect) {
  char name[64], path[96];
  const char *colon = strchr(expect, ':');
  snprintf(name, sizeof(name), "%.*s", (int)(colon - expect), expect);
  snprintf(path, sizeof(path), "%zu/headers/%s", i, name);
  const char *got = h_str(calls, path);
  assert_non_null(got);
  assert_string_equal(got, colon + 2);
}

static void test_row(void **state) {
  const struct row *r = *state;
  struct h_resp resp;
  assert_int_equal(h_associate(g_fx.unicrm.port, r->account, NULL, r->body, &resp), 0);
  if (resp.status != 201)
    fprintf(stderr, "%s: %ld %s\n", r->name, resp.status, resp.body);
  assert_int_equal(resp.status, 201);

  size_t n = row_ncalls(r);
  yajl_val calls = fx_expect_calls(n);
  for (size_t i = 0; i < n; i++) {
    fx_expect_call(calls, i, r->calls[i].method, r->calls[i].path, r->calls[i].body);
    row_check_auth(calls, i, r->auth_header);
  }

  /* The unified answer lists what was linked and the provider's reply (an array for 2+). */
  yajl_val body = h_json(resp.body);
  assert_non_null(body);
  assert_non_null(h_str(body, "entity_id"));
  assert_true(YAJL_IS_OBJECT(h_get(body, "associations")));
  yajl_val rd = h_get(body, "remote_data");
  assert_non_null(rd);
  if (n > 1)
    assert_int_equal(rd->u.array.len, n);
  yajl_tree_free(body);
  yajl_tree_free(calls);
  h_resp_free(&resp);
}

int main(void) {
  struct CMUnitTest tests[sizeof(rows) / sizeof(rows[0])];
  size_t n = sizeof(rows) / sizeof(rows[0]);
  for (size_t i = 0; i < n; i++) {
    tests[i] = (struct CMUnitTest){rows[i].name, test_row, fx_reset, NULL, (void *)&rows[i]};
  }
  return _cmocka_run_group_tests("spec_rows", tests, n, fx_group_setup, fx_group_teardown);
}
