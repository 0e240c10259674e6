/* Unit tests for src/query.c: the query parameters of SPEC 3.1. */
#include "unit_helpers.h"

#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "query.h"

static void parse_ok(const char *qs, struct ucrm_query *q) {
  struct ucrm_err err = {0};
  if (ucrm_query_parse(qs, strlen(qs), q, &err) != 0)
    fail_msg("query \"%s\" rejected: %s", qs, err.msg);
}

static void check_rejected(const char *qs, const char *needle, const char *file, int line) {
  struct ucrm_query q;
  struct ucrm_err err = {0};
  _assert_int_equal(ucrm_query_parse(qs, strlen(qs), &q, &err), UCRM_EINVAL, file, line);
  _assert_int_equal(err.status, 400, file, line);
  unit_check_has(err.msg, needle, file, line);
  ucrm_query_free(&q);
}

/* The query string is a 400 whose message holds needle. */
#define assert_query_rejected(qs, needle) check_rejected((qs), (needle), __FILE__, __LINE__)

/* remote_query parses and re-encodes to exactly want. */
static void check_remote(const char *qs, const char *want, const char *file, int line) {
  struct ucrm_query q;
  parse_ok(qs, &q);
  _assert_true(q.remote_qs != NULL, "remote_qs set", file, line);
  _assert_string_equal(q.remote_qs, want, file, line);
  ucrm_query_free(&q);
}

#define assert_remote(qs, want) check_remote((qs), (want), __FILE__, __LINE__)

/* ---- plain parameters ---- */

static void test_empty_query_gives_defaults(void **state) {
  struct ucrm_query q;
  parse_ok("", &q);
  assert_null(q.account_id);
  assert_int_equal(q.format, UCRM_FMT_UNIFIED);
  assert_int_equal(q.ignore_remote_data, 0);
  assert_int_equal(q.dry_run, 0);
  assert_int_equal(q.nexclude, 0);
  assert_null(q.remote_qs);
  assert_int_equal(q.nremote, 0);
  ucrm_query_free(&q);
}

static void test_account_id_read(void **state) {
  struct ucrm_query q;
  parse_ok("integrated_account_id=62f44730-dd91-461e-bd6a-aedd9e0ad79d", &q);
  assert_string_equal(q.account_id, "62f44730-dd91-461e-bd6a-aedd9e0ad79d");
  ucrm_query_free(&q);
}

static void test_values_decoded_exactly_once(void **state) {
  struct ucrm_query q;
  parse_ok("integrated_account_id=a%2Db%2541+c", &q);
  assert_string_equal(q.account_id, "a-b%41 c");
  ucrm_query_free(&q);
}

static void test_each_format_read(void **state) {
  static const char *const names[] = {"unified", "raw", "normalized", "stream"};
  static const enum ucrm_format want[] = {UCRM_FMT_UNIFIED, UCRM_FMT_RAW, UCRM_FMT_NORMALIZED,
                                          UCRM_FMT_STREAM};
  for (size_t i = 0; i < UCRM_ARRAY_LEN(names); i++) {
    char qs[64];
    snprintf(qs, sizeof(qs), "truto_response_format=%s", names[i]);
    struct ucrm_query q;
    parse_ok(qs, &q);
    assert_int_equal(q.format, want[i]);
    assert_string_equal(ucrm_format_name(q.format), names[i]);
    ucrm_query_free(&q);
  }
}

static void test_bad_format_rejected(void **state) {
  assert_query_rejected("truto_response_format=json", "truto_response_format");
  assert_query_rejected("truto_response_format=RAW", "truto_response_format");
  assert_query_rejected("truto_response_format=", "truto_response_format");
}

static void test_booleans_true_false_one_zero(void **state) {
  static const char *const qs[] = {
      "truto_ignore_remote_data=true&dry_run=1", "truto_ignore_remote_data=1&dry_run=true",
      "truto_ignore_remote_data=false&dry_run=0", "truto_ignore_remote_data=0&dry_run=false"};
  static const int want[] = {1, 1, 0, 0};
  for (size_t i = 0; i < UCRM_ARRAY_LEN(qs); i++) {
    struct ucrm_query q;
    parse_ok(qs[i], &q);
    assert_int_equal(q.ignore_remote_data, want[i]);
    assert_int_equal(q.dry_run, want[i]);
    ucrm_query_free(&q);
  }
}

static void test_bad_booleans_rejected(void **state) {
  assert_query_rejected("truto_ignore_remote_data=yes", "truto_ignore_remote_data");
  assert_query_rejected("truto_ignore_remote_data=TRUE", "truto_ignore_remote_data");
  assert_query_rejected("truto_ignore_remote_data=", "truto_ignore_remote_data");
  assert_query_rejected("dry_run=2", "dry_run");
  assert_query_rejected("dry_run", "dry_run");
}

static void test_repeated_scalars_rejected(void **state) {
  assert_query_rejected("integrated_account_id=a&integrated_account_id=a", "repeated");
  assert_query_rejected("truto_response_format=raw&truto_response_format=raw", "repeated");
  assert_query_rejected("truto_ignore_remote_data=1&truto_ignore_remote_data=0", "repeated");
  assert_query_rejected("dry_run=true&dry_run=true", "dry_run is repeated");
  assert_query_rejected("truto_exclude_fields=a&truto_exclude_fields=b", "repeated");
}

static void test_unknown_parameters_and_empty_pairs_ignored(void **state) {
  struct ucrm_query q;
  parse_ok("&foo=bar&&integrated_account_id=x&limit=5&", &q);
  assert_string_equal(q.account_id, "x");
  assert_null(q.remote_qs);
  ucrm_query_free(&q);
}

static void test_nul_byte_rejected(void **state) {
  assert_query_rejected("integrated_account_id=a%00b", "NUL");
  assert_query_rejected("dry%00_run=1", "NUL");
}

static void test_malformed_percent_escapes_rejected(void **state) {
  assert_query_rejected("integrated_account_id=%zz", "percent");
  assert_query_rejected("integrated_account_id=%4", "percent");
  assert_query_rejected("integrated_account_id=abc%", "percent");
  assert_query_rejected("a%G0=1", "percent");
  assert_query_rejected("remote_query[a]=%2", "percent");
}

/* ---- truto_exclude_fields ---- */

static void test_exclude_fields_bracket_form(void **state) {
  struct ucrm_query q;
  parse_ok("truto_exclude_fields[]=a&truto_exclude_fields%5B%5D=remote_data.data", &q);
  assert_int_equal(q.nexclude, 2);
  assert_string_equal(q.exclude[0], "a");
  assert_string_equal(q.exclude[1], "remote_data.data");
  ucrm_query_free(&q);
}

static void test_exclude_fields_comma_form(void **state) {
  struct ucrm_query q;
  parse_ok("truto_exclude_fields=a,b.c,,d", &q);
  assert_int_equal(q.nexclude, 3);
  assert_string_equal(q.exclude[0], "a");
  assert_string_equal(q.exclude[1], "b.c");
  assert_string_equal(q.exclude[2], "d");
  ucrm_query_free(&q);
}

static void test_exclude_fields_both_forms_combine(void **state) {
  struct ucrm_query q;
  parse_ok("truto_exclude_fields=a%2Cb&truto_exclude_fields[0]=c", &q);
  assert_int_equal(q.nexclude, 3);
  assert_string_equal(q.exclude[0], "a");
  assert_string_equal(q.exclude[1], "b");
  assert_string_equal(q.exclude[2], "c");
  ucrm_query_free(&q);
}

static void test_exclude_fields_malformed_key_rejected(void **state) {
  assert_query_rejected("truto_exclude_fields[x]=a", "truto_exclude_fields");
  assert_query_rejected("truto_exclude_fields[]]=a", "truto_exclude_fields");
  assert_query_rejected("truto_exclude_fields[=a", "truto_exclude_fields");
}

static void test_exclude_fields_capped(void **state) {
  struct ubuf qs;
  ubuf_init(&qs, 1 << 16);
  for (int i = 0; i < UCRM_QUERY_MAX_EXCLUDE; i++)
    ubuf_printf(&qs, "%struto_exclude_fields[]=f%d", i ? "&" : "", i);

  struct ucrm_query q;
  parse_ok(ubuf_cstr(&qs), &q);
  assert_int_equal(q.nexclude, UCRM_QUERY_MAX_EXCLUDE);
  assert_string_equal(q.exclude[UCRM_QUERY_MAX_EXCLUDE - 1], "f63");
  ucrm_query_free(&q);

  ubuf_puts(&qs, "&truto_exclude_fields[]=one-too-many");
  assert_query_rejected(ubuf_cstr(&qs), "more than 64");
  ubuf_free(&qs);
}

/* ---- remote_query ---- */

static void test_remote_query_simple(void **state) {
  struct ucrm_query q;
  parse_ok("remote_query[foo]=bar", &q);
  assert_string_equal(q.remote_qs, "foo=bar");
  assert_int_equal(q.nremote, 1);
  ucrm_query_free(&q);
}

static void test_remote_query_brackets_reencoded(void **state) {
  assert_remote("remote_query[a][b]=c&remote_query[ids][]=1&remote_query[ids][]=2",
                "a%5Bb%5D=c&ids%5B%5D=1&ids%5B%5D=2");
}

static void test_remote_query_encoded_brackets_accepted(void **state) {
  assert_remote("remote_query%5Ba%5D%5Bb%5D=c", "a%5Bb%5D=c");
}

static void test_remote_query_values_strictly_encoded(void **state) {
  assert_remote("remote_query[q]=a%26b%23c%20d%2Fe+f", "q=a%26b%23c%20d%2Fe%20f");
  assert_remote("remote_query[q]=%3D%3F%25", "q=%3D%3F%25");
  assert_remote("remote_query[q]=~-._Az09", "q=~-._Az09");
  assert_remote("remote_query[q]=%C3%A9", "q=%C3%A9");
}

static void test_remote_query_keys_strictly_encoded(void **state) {
  assert_remote("remote_query[a%20b]=1", "a%20b=1");
  assert_remote("remote_query[a%3Db%26c]=1", "a%3Db%26c=1");
  assert_remote("remote_query[x][a/b]=1", "x%5Ba%2Fb%5D=1");
}

static void test_remote_query_empty_value_kept(void **state) {
  assert_remote("remote_query[a]=&remote_query[b]", "a=&b=");
}

static void test_remote_query_double_encoding_preserved(void **state) {
  assert_remote("remote_query[a]=%2541", "a=%2541");
}

static void test_remote_query_control_bytes_rejected(void **state) {
  assert_query_rejected("remote_query[a]=x%0d%0aHost:evil", "control");
  assert_query_rejected("remote_query[a]=x%0a", "control");
  assert_query_rejected("remote_query[a]=x%00y", "control");
  assert_query_rejected("remote_query[a]=%7f", "control");
  assert_query_rejected("remote_query[a%0d]=1", "control");
}

static void test_remote_query_api_token_rejected(void **state) {
  assert_query_rejected("remote_query[api_token]=x", "api_token");
  assert_query_rejected("remote_query[api%5Ftoken]=x", "api_token");
}

static void test_remote_query_malformed_keys_rejected(void **state) {
  static const char *const bad[] = {
      "remote_query=1",         "remote_query[]=1",     "remote_query[a=1",   "remote_query[a]b=1",
      "remote_query[a][][b]=1", "remote_query[a[b]]=1", "remote_queryx[a]=1", "remote_query[a]]=1",
      "remote_query[a][b=1",    "remote_query.a=1",     "remote_query[]]=1",  "remote_query[][]=1",
  };
  for (size_t i = 0; i < UCRM_ARRAY_LEN(bad); i++)
    assert_query_rejected(bad[i], "malformed remote_query key");
}

static void test_remote_query_depth_capped(void **state) {
  assert_remote("remote_query[a][b][c][d][e][f][g][h]=1",
                "a%5Bb%5D%5Bc%5D%5Bd%5D%5Be%5D%5Bf%5D%5Bg%5D%5Bh%5D=1");
  assert_query_rejected("remote_query[a][b][c][d][e][f][g][h][i]=1", "deeper than 8");
}

static void test_remote_query_count_capped(void **state) {
  struct ubuf qs;
  ubuf_init(&qs, 1 << 16);
  for (int i = 0; i < UCRM_REMOTE_QUERY_MAX_PARAMS; i++)
    ubuf_printf(&qs, "%sremote_query[k%d]=%d", i ? "&" : "", i, i);

  struct ucrm_query q;
  parse_ok(ubuf_cstr(&qs), &q);
  assert_int_equal(q.nremote, UCRM_REMOTE_QUERY_MAX_PARAMS);
  assert_has(q.remote_qs, "&k63=63");
  ucrm_query_free(&q);

  ubuf_puts(&qs, "&remote_query[k64]=64");
  assert_query_rejected(ubuf_cstr(&qs), "more than 64");
  ubuf_free(&qs);
}

static void test_remote_query_mixed_with_other_parameters(void **state) {
  struct ucrm_query q;
  parse_ok("remote_query[a]=1&dry_run=1&remote_query[b][c]=2&truto_response_format=raw", &q);
  assert_string_equal(q.remote_qs, "a=1&b%5Bc%5D=2");
  assert_int_equal(q.nremote, 2);
  assert_int_equal(q.dry_run, 1);
  assert_int_equal(q.format, UCRM_FMT_RAW);
  ucrm_query_free(&q);
}

int main(void) {
  unit_filters_from_env();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty_query_gives_defaults),
      cmocka_unit_test(test_account_id_read),
      cmocka_unit_test(test_values_decoded_exactly_once),
      cmocka_unit_test(test_each_format_read),
      cmocka_unit_test(test_bad_format_rejected),
      cmocka_unit_test(test_booleans_true_false_one_zero),
      cmocka_unit_test(test_bad_booleans_rejected),
      cmocka_unit_test(test_repeated_scalars_rejected),
      cmocka_unit_test(test_unknown_parameters_and_empty_pairs_ignored),
      cmocka_unit_test(test_nul_byte_rejected),
      cmocka_unit_test(test_malformed_percent_escapes_rejected),
      cmocka_unit_test(test_exclude_fields_bracket_form),
      cmocka_unit_test(test_exclude_fields_comma_form),
      cmocka_unit_test(test_exclude_fields_both_forms_combine),
      cmocka_unit_test(test_exclude_fields_malformed_key_rejected),
      cmocka_unit_test(test_exclude_fields_capped),
      cmocka_unit_test(test_remote_query_simple),
      cmocka_unit_test(test_remote_query_brackets_reencoded),
      cmocka_unit_test(test_remote_query_encoded_brackets_accepted),
      cmocka_unit_test(test_remote_query_values_strictly_encoded),
      cmocka_unit_test(test_remote_query_keys_strictly_encoded),
      cmocka_unit_test(test_remote_query_empty_value_kept),
      cmocka_unit_test(test_remote_query_double_encoding_preserved),
      cmocka_unit_test(test_remote_query_control_bytes_rejected),
      cmocka_unit_test(test_remote_query_api_token_rejected),
      cmocka_unit_test(test_remote_query_malformed_keys_rejected),
      cmocka_unit_test(test_remote_query_depth_capped),
      cmocka_unit_test(test_remote_query_count_capped),
      cmocka_unit_test(test_remote_query_mixed_with_other_parameters),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
