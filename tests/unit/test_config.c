/* Unit tests for src/config.c: the config file of SPEC section 2. */
#include "unit_helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#define ACC "62f44730-dd91-461e-bd6a-aedd9e0ad79d"
#define ACC2 "0b6e2a10-1111-4222-8333-944455556666"
#define PD_ACCOUNT "{\"provider\":\"pipedrive\",\"credentials\":{\"api_token\":\"t\"}}"
#define SECRET "SEKRIT123"

static struct ucrm_config *parse_ok(const char *json) {
  struct ucrm_config *cfg = NULL;
  char err[512] = "";
  int rc = ucrm_config_parse(json, strlen(json), &cfg, err, sizeof(err));
  if (rc != 0)
    fail_msg("config rejected: %s", err);
  assert_non_null(cfg);
  return cfg;
}

/* Parses json, expects a rejection, and returns the message in err. */
static void check_parse_bad(const char *json, char *err, size_t errlen, const char *file,
                            int line) {
  struct ucrm_config *cfg = NULL;
  err[0] = '\0';
  int rc = ucrm_config_parse(json, strlen(json), &cfg, err, errlen);
  if (rc == 0)
    ucrm_config_free(cfg);
  _assert_int_equal(rc, UCRM_EINVAL, file, line);
  _assert_true(err[0] != '\0', "an error message", file, line);
}

#define parse_bad(json, err, errlen) check_parse_bad((json), (err), (errlen), __FILE__, __LINE__)

static void check_rejected(const char *json, const char *needle, const char *file, int line) {
  char err[512];
  check_parse_bad(json, err, sizeof(err), file, line);
  unit_check_has(err, needle, file, line);
}

/* The whole config document is rejected with a message naming needle. */
#define assert_rejected(json, needle) check_rejected((json), (needle), __FILE__, __LINE__)

/* A config holding one account (ACC) whose object is acct_json. */
static const char *one_account(const char *acct_json) {
  static char buf[4096];
  snprintf(buf, sizeof(buf), "{\"integrated_accounts\":{\"" ACC "\":%s}}", acct_json);
  return buf;
}

#define assert_account_rejected(acct_json, needle)                                                 \
  check_rejected(one_account(acct_json), (needle), __FILE__, __LINE__)

static struct ucrm_account *only_account(struct ucrm_config *cfg) {
  assert_int_equal(cfg->naccounts, 1);
  return &cfg->accounts[0];
}

/* ---- defaults and every key ---- */

static void test_defaults_apply_when_only_accounts_given(void **state) {
  struct ucrm_config *cfg = parse_ok(one_account(PD_ACCOUNT));

  assert_string_equal(cfg->listen_host, "127.0.0.1");
  assert_int_equal(cfg->listen_port, 8080);
  assert_int_equal(cfg->limits.max_connections, 10000);
  assert_int_equal(cfg->limits.max_header_bytes, 16384);
  assert_int_equal(cfg->limits.max_body_bytes, 1048576);
  assert_int_equal(cfg->limits.header_timeout_ms, 10000);
  assert_int_equal(cfg->limits.idle_timeout_ms, 60000);
  assert_int_equal(cfg->limits.request_timeout_ms, 30000);
  assert_int_equal(cfg->upstream.timeout_ms, 15000);
  assert_int_equal(cfg->upstream.connect_timeout_ms, 3000);
  assert_int_equal(cfg->upstream.max_retries, 2);
  assert_int_equal(cfg->upstream.max_host_connections, 64);
  assert_int_equal(cfg->upstream.max_inflight_per_account, 16);
  assert_null(cfg->upstream.ca_file);
  ucrm_config_free(cfg);
}

static void test_default_account_fields(void **state) {
  struct ucrm_config *cfg = parse_ok(one_account(PD_ACCOUNT));
  struct ucrm_account *a = only_account(cfg);

  assert_string_equal(a->id, ACC);
  assert_ptr_equal(a->provider, &ucrm_provider_pipedrive);
  assert_string_equal(a->base_url, "https://api.pipedrive.com");
  assert_string_equal(a->cred.api_token, "t");
  assert_null(a->cred.access_token);
  ucrm_config_free(cfg);
}

static void test_every_key_is_parsed(void **state) {
  const char *json =
      "{\"listen\":\"0.0.0.0:9090\","
      "\"limits\":{\"max_connections\":11,\"max_header_bytes\":2048,\"max_body_bytes\":4096,"
      "\"header_timeout_ms\":12,\"idle_timeout_ms\":13,\"request_timeout_ms\":14},"
      "\"upstream\":{\"timeout_ms\":21,\"connect_timeout_ms\":22,\"max_retries\":3,"
      "\"max_host_connections\":24,\"max_inflight_per_account\":25,"
      "\"ca_file\":\"/etc/ssl/test-ca.pem\"},"
      "\"integrated_accounts\":{\"" ACC "\":" PD_ACCOUNT "}}";
  struct ucrm_config *cfg = parse_ok(json);

  assert_string_equal(cfg->listen_host, "0.0.0.0");
  assert_int_equal(cfg->listen_port, 9090);
  assert_int_equal(cfg->limits.max_connections, 11);
  assert_int_equal(cfg->limits.max_header_bytes, 2048);
  assert_int_equal(cfg->limits.max_body_bytes, 4096);
  assert_int_equal(cfg->limits.header_timeout_ms, 12);
  assert_int_equal(cfg->limits.idle_timeout_ms, 13);
  assert_int_equal(cfg->limits.request_timeout_ms, 14);
  assert_int_equal(cfg->upstream.timeout_ms, 21);
  assert_int_equal(cfg->upstream.connect_timeout_ms, 22);
  assert_int_equal(cfg->upstream.max_retries, 3);
  assert_int_equal(cfg->upstream.max_host_connections, 24);
  assert_int_equal(cfg->upstream.max_inflight_per_account, 25);
  assert_string_equal(cfg->upstream.ca_file, "/etc/ssl/test-ca.pem");
  ucrm_config_free(cfg);
}

static void test_ca_file_null_means_system_bundle(void **state) {
  struct ucrm_config *cfg = parse_ok(
      "{\"upstream\":{\"ca_file\":null},\"integrated_accounts\":{\"" ACC "\":" PD_ACCOUNT "}}");
  assert_null(cfg->upstream.ca_file);
  ucrm_config_free(cfg);
}

static void test_listen_ipv6_bracketed(void **state) {
  struct ucrm_config *cfg =
      parse_ok("{\"listen\":\"[::1]:8081\",\"integrated_accounts\":{\"" ACC "\":" PD_ACCOUNT "}}");
  assert_string_equal(cfg->listen_host, "::1");
  assert_int_equal(cfg->listen_port, 8081);
  ucrm_config_free(cfg);
}

/* ---- rejected top-level shapes ---- */

static void test_bad_listen_rejected_naming_listen(void **state) {
  static const char *const bad[] = {"\"localhost\"",  "\":80\"",       "\"host:\"",
                                    "\"host:65536\"", "\"host:-1\"",   "\"host:80x\"",
                                    "\"[::1]8080\"",  "\"[::1:8080\"", "8080"};
  for (size_t i = 0; i < UCRM_ARRAY_LEN(bad); i++) {
    char json[512];
    snprintf(json, sizeof(json),
             "{\"listen\":%s,\"integrated_accounts\":{\"" ACC "\":" PD_ACCOUNT "}}", bad[i]);
    assert_rejected(json, "'listen'");
  }
}

static void test_not_json_rejected(void **state) {
  assert_rejected("{\"integrated_accounts\":", "not valid JSON");
  assert_rejected("", "not valid JSON");
}

static void test_not_an_object_rejected(void **state) {
  assert_rejected("[]", "JSON object");
}

static void test_missing_accounts_rejected(void **state) {
  assert_rejected("{\"listen\":\"127.0.0.1:1\"}", "'integrated_accounts'");
}

static void test_accounts_not_object_rejected(void **state) {
  assert_rejected("{\"integrated_accounts\":[]}", "'integrated_accounts'");
}

static void test_unknown_top_level_key_rejected(void **state) {
  assert_rejected("{\"lmits\":{},\"integrated_accounts\":{}}", "'lmits'");
}

static void test_unknown_limits_key_rejected(void **state) {
  assert_rejected("{\"limits\":{\"max_conns\":1},\"integrated_accounts\":{}}",
                  "'limits.max_conns'");
}

static void test_unknown_upstream_key_rejected(void **state) {
  assert_rejected("{\"upstream\":{\"retries\":1},\"integrated_accounts\":{}}",
                  "'upstream.retries'");
}

static void test_limits_not_object_rejected(void **state) {
  assert_rejected("{\"limits\":5,\"integrated_accounts\":{}}", "'limits'");
  assert_rejected("{\"upstream\":[],\"integrated_accounts\":{}}", "'upstream'");
}

static void test_number_of_wrong_type_rejected(void **state) {
  assert_rejected("{\"limits\":{\"max_connections\":\"10\"},\"integrated_accounts\":{}}",
                  "'limits.max_connections'");
  assert_rejected("{\"upstream\":{\"timeout_ms\":true},\"integrated_accounts\":{}}",
                  "'upstream.timeout_ms'");
}

static void test_number_not_integer_rejected(void **state) {
  assert_rejected("{\"limits\":{\"idle_timeout_ms\":1.5},\"integrated_accounts\":{}}",
                  "'limits.idle_timeout_ms'");
  assert_rejected("{\"limits\":{\"idle_timeout_ms\":1e3},\"integrated_accounts\":{}}",
                  "'limits.idle_timeout_ms'");
}

static void test_number_out_of_range_rejected(void **state) {
  assert_rejected("{\"limits\":{\"max_connections\":0},\"integrated_accounts\":{}}",
                  "'limits.max_connections'");
  assert_rejected("{\"upstream\":{\"max_retries\":-1},\"integrated_accounts\":{}}",
                  "'upstream.max_retries'");
  assert_rejected("{\"upstream\":{\"max_retries\":11},\"integrated_accounts\":{}}",
                  "'upstream.max_retries'");
}

static void test_ca_file_wrong_type_rejected(void **state) {
  assert_rejected("{\"upstream\":{\"ca_file\":5},\"integrated_accounts\":{}}",
                  "'upstream.ca_file'");
  assert_rejected("{\"upstream\":{\"ca_file\":\"\"},\"integrated_accounts\":{}}",
                  "'upstream.ca_file'");
}

/* ---- accounts ---- */

static void test_non_uuid_account_id_rejected(void **state) {
  assert_rejected("{\"integrated_accounts\":{\"acct-1\":" PD_ACCOUNT "}}",
                  "'integrated_accounts.acct-1' is not a UUID");
  assert_rejected("{\"integrated_accounts\":{\"62f44730-dd91-461e-bd6a-aedd9e0ad79g\":" PD_ACCOUNT
                  "}}",
                  "not a UUID");
}

static void test_account_not_object_rejected(void **state) {
  assert_account_rejected("\"pipedrive\"", "'integrated_accounts." ACC "'");
}

static void test_unknown_provider_rejected(void **state) {
  assert_account_rejected("{\"provider\":\"hubspot\",\"credentials\":{\"api_token\":\"t\"}}",
                          "'integrated_accounts." ACC ".provider'");
  assert_account_rejected("{\"provider\":7,\"credentials\":{\"api_token\":\"t\"}}", ".provider'");
}

static void test_missing_provider_rejected(void **state) {
  assert_account_rejected("{\"credentials\":{\"api_token\":\"t\"}}", ".provider' is missing");
}

static void test_missing_credentials_rejected(void **state) {
  assert_account_rejected("{\"provider\":\"pipedrive\"}", ".credentials' is missing");
  assert_account_rejected("{\"provider\":\"pipedrive\",\"credentials\":\"t\"}", ".credentials'");
}

static void test_unknown_account_key_rejected(void **state) {
  assert_account_rejected("{\"provider\":\"pipedrive\",\"credentials\":{\"api_token\":\"t\"},"
                          "\"region\":\"eu\"}",
                          "'integrated_accounts." ACC ".region'");
}

static void test_unknown_credential_key_rejected(void **state) {
  assert_account_rejected("{\"provider\":\"pipedrive\",\"credentials\":{\"api_tokn\":\"t\"}}",
                          ".credentials.api_tokn'");
}

static void test_credential_of_wrong_type_rejected(void **state) {
  assert_account_rejected("{\"provider\":\"pipedrive\",\"credentials\":{\"api_token\":5}}",
                          ".credentials.api_token'");
  assert_account_rejected("{\"provider\":\"pipedrive\",\"credentials\":{\"api_token\":\"\"}}",
                          ".credentials.api_token'");
}

static void test_pipedrive_needs_api_token_or_access_token(void **state) {
  assert_account_rejected("{\"provider\":\"pipedrive\",\"credentials\":{\"api_key\":\"k\"}}",
                          ".credentials.api_token'");

  struct ucrm_config *cfg = parse_ok(
      one_account("{\"provider\":\"pipedrive\",\"credentials\":{\"access_token\":\"oauth\"}}"));
  assert_string_equal(only_account(cfg)->cred.access_token, "oauth");
  ucrm_config_free(cfg);
}

static void test_close_needs_api_key_or_access_token(void **state) {
  assert_account_rejected("{\"provider\":\"close\",\"credentials\":{\"api_token\":\"k\"}}",
                          ".credentials.api_key'");

  struct ucrm_config *cfg =
      parse_ok(one_account("{\"provider\":\"close\",\"credentials\":{\"api_key\":\"k\"}}"));
  struct ucrm_account *a = only_account(cfg);
  assert_ptr_equal(a->provider, &ucrm_provider_close);
  assert_string_equal(a->base_url, "https://api.close.com");
  assert_string_equal(a->cred.api_key, "k");
  ucrm_config_free(cfg);
}

static void test_attio_needs_access_token(void **state) {
  assert_account_rejected("{\"provider\":\"attio\",\"credentials\":{\"api_key\":\"k\"}}",
                          ".credentials.access_token'");

  struct ucrm_config *cfg =
      parse_ok(one_account("{\"provider\":\"attio\",\"credentials\":{\"access_token\":\"a\"}}"));
  assert_string_equal(only_account(cfg)->base_url, "https://api.attio.com");
  ucrm_config_free(cfg);
}

static void test_salesforce_needs_access_token(void **state) {
  assert_account_rejected("{\"provider\":\"salesforce\",\"base_url\":\"https://x.my.salesforce"
                          ".com\",\"credentials\":{\"api_key\":\"k\"}}",
                          ".credentials.access_token'");
}

static void test_salesforce_refresh_token_needs_client(void **state) {
  assert_account_rejected("{\"provider\":\"salesforce\",\"base_url\":\"https://x.test\","
                          "\"credentials\":{\"access_token\":\"a\",\"refresh_token\":\"r\"}}",
                          ".credentials.refresh_token'");
}

static void test_salesforce_refresh_alone_is_enough(void **state) {
  struct ucrm_config *cfg = parse_ok(
      one_account("{\"provider\":\"salesforce\",\"base_url\":\"https://x.test\",\"credentials\":{"
                  "\"refresh_token\":\"r\",\"client_id\":\"c\",\"client_secret\":\"s\","
                  "\"token_url\":\"https://login.test/services/oauth2/token\"}}"));
  struct ucrm_account *a = only_account(cfg);
  assert_null(a->cred.access_token);
  assert_string_equal(a->cred.refresh_token, "r");
  assert_string_equal(a->cred.client_id, "c");
  assert_string_equal(a->cred.client_secret, "s");
  assert_string_equal(a->cred.token_url, "https://login.test/services/oauth2/token");
  ucrm_config_free(cfg);
}

static void test_salesforce_token_url_must_be_http(void **state) {
  assert_account_rejected("{\"provider\":\"salesforce\",\"base_url\":\"https://x.test\","
                          "\"credentials\":{\"access_token\":\"a\",\"token_url\":\"ftp://t\"}}",
                          ".credentials.token_url'");
}

static void test_salesforce_base_url_required(void **state) {
  char err[512];
  parse_bad(one_account("{\"provider\":\"salesforce\",\"credentials\":{\"access_token\":\"a\"}}"),
            err, sizeof(err));
  assert_has(err, "'integrated_accounts." ACC ".base_url'");
  assert_has(err, "salesforce");
}

static void test_salesforce_api_version_kept(void **state) {
  struct ucrm_config *cfg =
      parse_ok(one_account("{\"provider\":\"salesforce\",\"base_url\":\"https://x.test\","
                           "\"credentials\":{\"access_token\":\"a\",\"api_version\":\"v59.0\"}}"));
  assert_string_equal(only_account(cfg)->cred.api_version, "v59.0");
  ucrm_config_free(cfg);
}

static void test_salesforce_api_version_format_checked(void **state) {
  static const char *const bad[] = {"62.0", "v62", "v62.", "v.0", "v62.0.1", "V62.0", "v62.0 "};
  for (size_t i = 0; i < UCRM_ARRAY_LEN(bad); i++) {
    char acct[512];
    snprintf(acct, sizeof(acct),
             "{\"provider\":\"salesforce\",\"base_url\":\"https://x.test\","
             "\"credentials\":{\"access_token\":\"a\",\"api_version\":\"%s\"}}",
             bad[i]);
    assert_account_rejected(acct, ".credentials.api_version'");
  }
}

/* ---- env: credentials ---- */

static void test_env_credential_resolved(void **state) {
  setenv("UNIT_PD_TOKEN", "from-the-env", 1);
  struct ucrm_config *cfg = parse_ok(one_account(
      "{\"provider\":\"pipedrive\",\"credentials\":{\"api_token\":\"env:UNIT_PD_TOKEN\"}}"));
  assert_string_equal(only_account(cfg)->cred.api_token, "from-the-env");
  ucrm_config_free(cfg);
  unsetenv("UNIT_PD_TOKEN");
}

static void test_env_credential_missing_rejected(void **state) {
  unsetenv("UNIT_NOT_SET");
  char err[512];
  parse_bad(
      one_account(
          "{\"provider\":\"pipedrive\",\"credentials\":{\"api_token\":\"env:UNIT_NOT_SET\"}}"),
      err, sizeof(err));
  assert_has(err, ".credentials.api_token'");
  assert_has(err, "UNIT_NOT_SET");
}

static void test_env_credential_empty_rejected(void **state) {
  setenv("UNIT_EMPTY", "", 1);
  assert_account_rejected(
      "{\"provider\":\"pipedrive\",\"credentials\":{\"api_token\":\"env:UNIT_EMPTY\"}}",
      "UNIT_EMPTY");
  unsetenv("UNIT_EMPTY");
}

static void test_credential_control_byte_rejected(void **state) {
  assert_account_rejected(
      "{\"provider\":\"pipedrive\",\"credentials\":{\"api_token\":\"a\\r\\nX-Evil: 1\"}}",
      ".credentials.api_token'");
}

/* ---- base_url ---- */

static void test_base_url_trailing_slash_stripped(void **state) {
  struct ucrm_config *cfg =
      parse_ok(one_account("{\"provider\":\"pipedrive\",\"base_url\":\"http://127.0.0.1:9000/\","
                           "\"credentials\":{\"api_token\":\"t\"}}"));
  assert_string_equal(only_account(cfg)->base_url, "http://127.0.0.1:9000");
  ucrm_config_free(cfg);
}

static void test_base_url_prefix_kept_slashes_stripped(void **state) {
  struct ucrm_config *cfg =
      parse_ok(one_account("{\"provider\":\"attio\",\"base_url\":\"https://proxy.test/attio//\","
                           "\"credentials\":{\"access_token\":\"t\"}}"));
  assert_string_equal(only_account(cfg)->base_url, "https://proxy.test/attio");
  ucrm_config_free(cfg);
}

static void test_bad_base_url_rejected(void **state) {
  static const char *const bad[] = {"\"ftp://x.test\"",        "\"x.test\"",
                                    "\"https://x.test/?a=1\"", "\"https://x.test/#f\"",
                                    "\"https://x .test\"",     "5"};
  for (size_t i = 0; i < UCRM_ARRAY_LEN(bad); i++) {
    char acct[512];
    snprintf(acct, sizeof(acct),
             "{\"provider\":\"pipedrive\",\"base_url\":%s,"
             "\"credentials\":{\"api_token\":\"t\"}}",
             bad[i]);
    assert_account_rejected(acct, ".base_url'");
  }
}

static void test_base_url_without_host_rejected(void **state) {
  assert_account_rejected("{\"provider\":\"pipedrive\",\"base_url\":\"https://\","
                          "\"credentials\":{\"api_token\":\"t\"}}",
                          ".base_url'");
  assert_account_rejected("{\"provider\":\"pipedrive\",\"base_url\":\"http:///v1\","
                          "\"credentials\":{\"api_token\":\"t\"}}",
                          ".base_url'");
}

/* Found in review: a user:password@ in base_url showed up in dry-run plans. */
static void test_base_url_with_userinfo_rejected(void **state) {
  assert_account_rejected("{\"provider\":\"pipedrive\",\"base_url\":\"https://u:pw@api.x\","
                          "\"credentials\":{\"api_token\":\"t\"}}",
                          ".base_url'");
}

/* ---- lookup ---- */

static void test_account_lookup_is_case_insensitive(void **state) {
  struct ucrm_config *cfg =
      parse_ok("{\"integrated_accounts\":{\"62F44730-DD91-461E-BD6A-AEDD9E0AD79D\":" PD_ACCOUNT ","
               "\"" ACC2 "\":{\"provider\":\"attio\",\"credentials\":{\"access_token\":\"a\"}}}}");
  assert_int_equal(cfg->naccounts, 2);

  struct ucrm_account *a = ucrm_config_account(cfg, ACC);
  assert_non_null(a);
  assert_string_equal(a->id, ACC);
  assert_ptr_equal(a->provider, &ucrm_provider_pipedrive);
  assert_ptr_equal(ucrm_config_account(cfg, "62F44730-dd91-461E-bd6a-AEDD9E0AD79D"), a);

  struct ucrm_account *b = ucrm_config_account(cfg, "0B6E2A10-1111-4222-8333-944455556666");
  assert_non_null(b);
  assert_ptr_equal(b->provider, &ucrm_provider_attio);
  ucrm_config_free(cfg);
}

static void test_account_lookup_unknown_is_null(void **state) {
  struct ucrm_config *cfg = parse_ok(one_account(PD_ACCOUNT));
  assert_null(ucrm_config_account(cfg, ACC2));
  assert_null(ucrm_config_account(cfg, "not-a-uuid"));
  assert_null(ucrm_config_account(cfg, ""));
  ucrm_config_free(cfg);
}

static void test_duplicate_account_differing_in_case_rejected(void **state) {
  assert_rejected("{\"integrated_accounts\":{\"" ACC "\":" PD_ACCOUNT ","
                  "\"62F44730-DD91-461E-BD6A-AEDD9E0AD79D\":" PD_ACCOUNT "}}",
                  "appears twice");
}

/* ---- secrets never reach an error message ---- */

static void check_secret_hidden(const char *json, const char *file, int line) {
  char err[512];
  check_parse_bad(json, err, sizeof(err), file, line);
  unit_check_lacks(err, SECRET, file, line);
}

#define assert_secret_hidden(json) check_secret_hidden((json), __FILE__, __LINE__)

static void test_secret_absent_from_later_top_level_error(void **state) {
  assert_secret_hidden("{\"integrated_accounts\":{\"" ACC "\":{\"provider\":\"pipedrive\","
                       "\"credentials\":{\"api_token\":\"" SECRET "\"}}},\"listen\":\"bad\"}");
}

static void test_secret_absent_from_later_account_error(void **state) {
  assert_secret_hidden("{\"integrated_accounts\":{\"" ACC "\":{\"provider\":\"pipedrive\","
                       "\"credentials\":{\"api_token\":\"" SECRET "\"},"
                       "\"base_url\":\"ftp://x\"}}}");
  assert_secret_hidden("{\"integrated_accounts\":{\"" ACC "\":{\"provider\":\"salesforce\","
                       "\"base_url\":\"https://x.test\",\"credentials\":{\"access_token\":\"" SECRET
                       "\",\"api_version\":\"62\"}}}}");
  assert_secret_hidden(
      "{\"integrated_accounts\":{\"" ACC "\":{\"provider\":\"salesforce\","
      "\"base_url\":\"https://x.test\",\"credentials\":{\"client_secret\":\"" SECRET
      "\",\"refresh_token\":\"r\"}}}}");
}

static void test_secret_absent_from_later_account_id_error(void **state) {
  assert_secret_hidden("{\"integrated_accounts\":{\"" ACC "\":{\"provider\":\"pipedrive\","
                       "\"credentials\":{\"api_token\":\"" SECRET "\"}},\"bad-id\":{}}}");
}

static void test_secret_from_env_absent_from_error(void **state) {
  setenv("UNIT_SECRET", SECRET, 1);
  assert_secret_hidden("{\"integrated_accounts\":{\"" ACC "\":{\"provider\":\"salesforce\","
                       "\"base_url\":\"https://x.test\",\"credentials\":{\"access_token\":"
                       "\"env:UNIT_SECRET\",\"token_url\":\"gopher://t\"}}}}");
  unsetenv("UNIT_SECRET");
}

static void test_secret_absent_from_json_syntax_error(void **state) {
  assert_secret_hidden("{\"integrated_accounts\":{\"" ACC "\":{\"provider\":\"pipedrive\","
                       "\"credentials\":{\"api_token\":\"" SECRET "\"}}} trailing");
  assert_secret_hidden("{\"integrated_accounts\":{\"" ACC "\":{\"credentials\":{\"api_token\":"
                       "\"" SECRET "\x01\"}}}}");
}

static void test_secret_with_control_byte_absent_from_error(void **state) {
  assert_secret_hidden("{\"integrated_accounts\":{\"" ACC "\":{\"provider\":\"pipedrive\","
                       "\"credentials\":{\"api_token\":\"" SECRET "\\u0001\"}}}}");
}

/* ---- helpers exported by config.h ---- */

static void test_is_uuid(void **state) {
  assert_true(ucrm_is_uuid(ACC, 36));
  assert_true(ucrm_is_uuid("62F44730-DD91-461E-BD6A-AEDD9E0AD79D", 36));
  assert_false(ucrm_is_uuid("62f44730dd91-461e-bd6a-aedd9e0ad79d0", 36));
  assert_false(ucrm_is_uuid("62f44730-dd91-461e-bd6a-aedd9e0ad79", 35));
  assert_false(ucrm_is_uuid("62f44730-dd91-461e-bd6a-aedd9e0ad79dd", 37));
  assert_false(ucrm_is_uuid("z2f44730-dd91-461e-bd6a-aedd9e0ad79d", 36));
}

static void test_config_load_reads_file(void **state) {
  char path[] = "/tmp/unicrm-unit-config-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *json = one_account(PD_ACCOUNT);
  assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
  close(fd);

  struct ucrm_config *cfg = NULL;
  char err[512] = "";
  assert_int_equal(ucrm_config_load(path, &cfg, err, sizeof(err)), 0);
  assert_string_equal(only_account(cfg)->cred.api_token, "t");
  ucrm_config_free(cfg);
  unlink(path);
}

static void test_config_load_missing_file_rejected(void **state) {
  struct ucrm_config *cfg = NULL;
  char err[512] = "";
  assert_int_equal(ucrm_config_load("/nonexistent/unicrm.json", &cfg, err, sizeof(err)),
                   UCRM_EINVAL);
  assert_null(cfg);
  assert_has(err, "/nonexistent/unicrm.json");
}

int main(void) {
  unit_filters_from_env();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_apply_when_only_accounts_given),
      cmocka_unit_test(test_default_account_fields),
      cmocka_unit_test(test_every_key_is_parsed),
      cmocka_unit_test(test_ca_file_null_means_system_bundle),
      cmocka_unit_test(test_listen_ipv6_bracketed),
      cmocka_unit_test(test_bad_listen_rejected_naming_listen),
      cmocka_unit_test(test_not_json_rejected),
      cmocka_unit_test(test_not_an_object_rejected),
      cmocka_unit_test(test_missing_accounts_rejected),
      cmocka_unit_test(test_accounts_not_object_rejected),
      cmocka_unit_test(test_unknown_top_level_key_rejected),
      cmocka_unit_test(test_unknown_limits_key_rejected),
      cmocka_unit_test(test_unknown_upstream_key_rejected),
      cmocka_unit_test(test_limits_not_object_rejected),
      cmocka_unit_test(test_number_of_wrong_type_rejected),
      cmocka_unit_test(test_number_not_integer_rejected),
      cmocka_unit_test(test_number_out_of_range_rejected),
      cmocka_unit_test(test_ca_file_wrong_type_rejected),
      cmocka_unit_test(test_non_uuid_account_id_rejected),
      cmocka_unit_test(test_account_not_object_rejected),
      cmocka_unit_test(test_unknown_provider_rejected),
      cmocka_unit_test(test_missing_provider_rejected),
      cmocka_unit_test(test_missing_credentials_rejected),
      cmocka_unit_test(test_unknown_account_key_rejected),
      cmocka_unit_test(test_unknown_credential_key_rejected),
      cmocka_unit_test(test_credential_of_wrong_type_rejected),
      cmocka_unit_test(test_pipedrive_needs_api_token_or_access_token),
      cmocka_unit_test(test_close_needs_api_key_or_access_token),
      cmocka_unit_test(test_attio_needs_access_token),
      cmocka_unit_test(test_salesforce_needs_access_token),
      cmocka_unit_test(test_salesforce_refresh_token_needs_client),
      cmocka_unit_test(test_salesforce_refresh_alone_is_enough),
      cmocka_unit_test(test_salesforce_token_url_must_be_http),
      cmocka_unit_test(test_salesforce_base_url_required),
      cmocka_unit_test(test_salesforce_api_version_kept),
      cmocka_unit_test(test_salesforce_api_version_format_checked),
      cmocka_unit_test(test_env_credential_resolved),
      cmocka_unit_test(test_env_credential_missing_rejected),
      cmocka_unit_test(test_env_credential_empty_rejected),
      cmocka_unit_test(test_credential_control_byte_rejected),
      cmocka_unit_test(test_base_url_trailing_slash_stripped),
      cmocka_unit_test(test_base_url_prefix_kept_slashes_stripped),
      cmocka_unit_test(test_bad_base_url_rejected),
      cmocka_unit_test(test_base_url_without_host_rejected),
      cmocka_unit_test(test_base_url_with_userinfo_rejected),
      cmocka_unit_test(test_account_lookup_is_case_insensitive),
      cmocka_unit_test(test_account_lookup_unknown_is_null),
      cmocka_unit_test(test_duplicate_account_differing_in_case_rejected),
      cmocka_unit_test(test_secret_absent_from_later_top_level_error),
      cmocka_unit_test(test_secret_absent_from_later_account_error),
      cmocka_unit_test(test_secret_absent_from_later_account_id_error),
      cmocka_unit_test(test_secret_from_env_absent_from_error),
      cmocka_unit_test(test_secret_absent_from_json_syntax_error),
      cmocka_unit_test(test_secret_with_control_byte_absent_from_error),
      cmocka_unit_test(test_is_uuid),
      cmocka_unit_test(test_config_load_reads_file),
      cmocka_unit_test(test_config_load_missing_file_rejected),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
