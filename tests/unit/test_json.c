/* Unit tests for src/json.c: the value tree, its exact numbers, merge and delete_path. */
#include "unit_helpers.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"

static struct jv *parse_ok(const char *text) {
  struct jv *v = NULL;
  char err[128] = "";
  if (jv_parse(text, strlen(text), JV_MAX_DEPTH, &v, err, sizeof(err)) != 0)
    fail_msg("\"%s\" did not parse: %s", text, err);
  assert_non_null(v);
  return v;
}

static void check_dump(const struct jv *v, const char *want, const char *file, int line) {
  size_t len = 0;
  char *got = jv_dump(v, &len);
  _assert_true(got != NULL, "jv_dump produced output", file, line);
  _assert_string_equal(got, want, file, line);
  _assert_int_equal(len, strlen(want), file, line);
  free(got);
}

/* v serialises to exactly want. */
#define assert_dump(v, want) check_dump((v), (want), __FILE__, __LINE__)

static void check_round_trip(const char *text, const char *file, int line) {
  struct jv *v = parse_ok(text);
  check_dump(v, text, file, line);
  jv_free(v);
}

/* text parses and dumps back byte for byte. */
#define assert_round_trip(text) check_round_trip((text), __FILE__, __LINE__)

static void check_parse_fails(const char *text, size_t len, int depth, const char *needle,
                              const char *file, int line) {
  struct jv *v = (struct jv *)&v; /* must be overwritten with NULL */
  char err[128] = "";
  _assert_int_equal(jv_parse(text, len, depth, &v, err, sizeof(err)), UCRM_EINVAL, file, line);
  _assert_true(v == NULL, "no tree on failure", file, line);
  unit_check_has(err, needle, file, line);
}

#define assert_parse_fails(text, needle)                                                           \
  check_parse_fails((text), strlen(text), JV_MAX_DEPTH, (needle), __FILE__, __LINE__)

/* ---- parse and dump ---- */

static void test_number_text_kept_exactly(void **state) {
  assert_round_trip("[1e400,12345678901234567890,-0.5,0,-0,1.0E+2,3.14159265358979323846264]");
}

static void test_number_node_holds_source_text(void **state) {
  struct jv *v = parse_ok("{\"n\":1e400}");
  struct jv *n = jv_obj_get(v, "n");
  assert_non_null(n);
  assert_int_equal(n->type, JV_NUMBER);
  assert_string_equal(n->u.str.s, "1e400");
  assert_int_equal(n->u.str.len, 5);
  jv_free(v);
}

static void test_scalars_and_empty_containers_round_trip(void **state) {
  assert_round_trip("{\"a\":[],\"b\":{},\"c\":null,\"d\":true,\"e\":false,\"f\":\"\"}");
  assert_round_trip("[[[]],{\"x\":[{}]}]");
  assert_round_trip("\"top-level string\"");
  assert_round_trip("null");
}

static void test_member_order_kept(void **state) {
  assert_round_trip("{\"z\":1,\"a\":2,\"m\":{\"b\":1,\"a\":2}}");
}

static void test_string_escapes_round_trip(void **state) {
  assert_round_trip("{\"a\":\"q\\\"b\\\\n\\nt\\t\",\"b\":\"caf\xc3\xa9\",\"c\":\"a/b\"}");
}

static void test_unicode_escape_decoded(void **state) {
  struct jv *v = parse_ok("[\"\\u00e9\\u0041\"]");
  assert_string_equal(v->u.arr.items[0]->u.str.s, "\xc3\xa9"
                                                  "A");
  assert_dump(v, "[\"\xc3\xa9"
                 "A\"]");
  jv_free(v);
}

/* Found in review: a repeated key let the last value win silently (two "contacts" lists got
 * past the single-value rule). Strict parsing refuses it; provider replies are lenient. */
static void test_duplicate_key_refused_unless_lenient(void **state) {
  assert_parse_fails("{\"a\":1,\"b\":2,\"a\":3}", "repeats a key");
  struct jv *v = NULL;
  char err[64];
  assert_int_equal(jv_parse_lenient("{\"a\":1,\"a\":3}", 13, 8, &v, err, sizeof(err)), 0);
  assert_dump(v, "{\"a\":3}");
  jv_free(v);
}

static void test_malformed_json_rejected(void **state) {
  assert_parse_fails("{} {}", "at byte");
  assert_parse_fails("{\"a\":1} x", "at byte");
  assert_parse_fails("[1,]", "at byte");
  assert_parse_fails("{'a':1}", "at byte");
  assert_parse_fails("[01]", "at byte");
  assert_parse_fails("[NaN]", "at byte");
  assert_parse_fails("[\"\xff\"]", "at byte");
  assert_parse_fails("{\"a\":", "");
  check_parse_fails("", 0, JV_MAX_DEPTH, "", __FILE__, __LINE__);
}

static void test_parse_error_does_not_echo_input(void **state) {
  struct jv *v = NULL;
  char err[128] = "";
  const char *text = "{\"token\":\"SEKRIT123\" oops}";
  assert_int_equal(jv_parse(text, strlen(text), JV_MAX_DEPTH, &v, err, sizeof(err)), UCRM_EINVAL);
  assert_lacks(err, "SEKRIT123");
  assert_lacks(err, "oops");
}

static void test_depth_cap_enforced(void **state) {
  struct jv *v = NULL;
  char err[128];
  assert_int_equal(jv_parse("[[[1]]]", 7, 3, &v, err, sizeof(err)), 0);
  jv_free(v);
  check_parse_fails("[[[[1]]]]", 9, 3, "nesting deeper than 3", __FILE__, __LINE__);
  check_parse_fails("{\"a\":{\"b\":{\"c\":{}}}}", 20, 3, "nesting deeper than 3", __FILE__,
                    __LINE__);
}

static void test_depth_cap_never_above_64(void **state) {
  struct ubuf b;
  ubuf_init(&b, 4096);
  for (int i = 0; i < JV_MAX_DEPTH; i++)
    ubuf_putc(&b, '[');
  for (int i = 0; i < JV_MAX_DEPTH; i++)
    ubuf_putc(&b, ']');

  struct jv *v = NULL;
  char err[128];
  assert_int_equal(jv_parse(b.data, b.len, 1000, &v, err, sizeof(err)), 0);
  jv_free(v);

  ubuf_reset(&b);
  for (int i = 0; i <= JV_MAX_DEPTH; i++)
    ubuf_putc(&b, '[');
  for (int i = 0; i <= JV_MAX_DEPTH; i++)
    ubuf_putc(&b, ']');
  check_parse_fails(b.data, b.len, 1000, "nesting deeper than 64", __FILE__, __LINE__);
  ubuf_free(&b);
}

/* ---- building ---- */

static void test_constructors(void **state) {
  struct jv *o = jv_new(JV_OBJECT);
  assert_int_equal(jv_obj_set(o, "i", jv_new_int(-42)), 0);
  assert_int_equal(jv_obj_set(o, "max", jv_new_int(LLONG_MAX)), 0);
  assert_int_equal(jv_obj_set(o, "n", jv_new_number("1e400", 5)), 0);
  assert_int_equal(jv_obj_set(o, "s", jv_new_string("a\"b", 3)), 0);
  struct jv *arr = jv_new(JV_ARRAY);
  assert_int_equal(jv_arr_push(arr, jv_new(JV_TRUE)), 0);
  assert_int_equal(jv_arr_push(arr, jv_new(JV_NULL)), 0);
  assert_int_equal(jv_obj_set(o, "a", arr), 0);
  assert_dump(o, "{\"i\":-42,\"max\":9223372036854775807,\"n\":1e400,\"s\":\"a\\\"b\","
                 "\"a\":[true,null]}");
  jv_free(o);
}

static void test_obj_set_replaces_in_place(void **state) {
  struct jv *o = parse_ok("{\"a\":1,\"b\":2}");
  assert_int_equal(jv_obj_set(o, "a", jv_new_string("x", 1)), 0);
  assert_dump(o, "{\"a\":\"x\",\"b\":2}");
  assert_null(jv_obj_get(o, "c"));
  assert_null(jv_obj_get(NULL, "a"));
  jv_free(o);
}

static void test_obj_set_null_value_is_enomem(void **state) {
  struct jv *o = jv_new(JV_OBJECT);
  assert_int_equal(jv_obj_set(o, "a", NULL), UCRM_ENOMEM);
  assert_int_equal(o->u.obj.n, 0);
  jv_free(o);
}

static void test_copy_is_deep(void **state) {
  struct jv *v = parse_ok("{\"a\":{\"b\":[1,\"s\"]},\"n\":1e400}");
  struct jv *c = jv_copy(v);
  jv_obj_delete_path(v, "a.b");
  assert_dump(v, "{\"a\":{},\"n\":1e400}");
  assert_dump(c, "{\"a\":{\"b\":[1,\"s\"]},\"n\":1e400}");
  jv_free(v);
  jv_free(c);
}

static void test_dump_rejects_invalid_utf8(void **state) {
  struct jv *s = jv_new_string("\xff", 1);
  assert_null(jv_dump(s, NULL));
  jv_free(s);
}

/* ---- merge ---- */

static void check_merge(const char *dst, const char *src, const char *want, const char *file,
                        int line) {
  struct jv *d = parse_ok(dst);
  struct jv *s = parse_ok(src);
  _assert_int_equal(jv_merge(d, s), 0, file, line);
  check_dump(d, want, file, line);
  check_dump(s, src, file, line); /* src is only read */
  jv_free(d);
  jv_free(s);
}

/* Merging src into dst gives want, and leaves src as it was. */
#define assert_merge(dst, src, want) check_merge((dst), (src), (want), __FILE__, __LINE__)

static void test_merge_objects_merge_key_by_key(void **state) {
  assert_merge("{\"a\":{\"x\":1,\"y\":2},\"d\":1}", "{\"a\":{\"y\":3,\"z\":4}}",
               "{\"a\":{\"x\":1,\"y\":3,\"z\":4},\"d\":1}");
}

static void test_merge_is_deep(void **state) {
  assert_merge("{\"a\":{\"b\":{\"c\":1,\"keep\":true}}}", "{\"a\":{\"b\":{\"c\":2,\"new\":[]}}}",
               "{\"a\":{\"b\":{\"c\":2,\"keep\":true,\"new\":[]}}}");
}

static void test_merge_arrays_replaced_not_concatenated(void **state) {
  assert_merge("{\"b\":[1,2]}", "{\"b\":[3]}", "{\"b\":[3]}");
}

static void test_merge_src_wins_over_scalars(void **state) {
  assert_merge("{\"person_id\":123,\"s\":\"x\"}", "{\"person_id\":\"999\",\"s\":null}",
               "{\"person_id\":\"999\",\"s\":null}");
}

static void test_merge_object_replaces_scalar_and_back(void **state) {
  assert_merge("{\"c\":\"s\",\"o\":{\"x\":1}}", "{\"c\":{\"k\":1},\"o\":5}",
               "{\"c\":{\"k\":1},\"o\":5}");
}

static void test_merge_adds_new_keys_at_end(void **state) {
  assert_merge("{\"a\":1}", "{\"z\":{\"y\":1},\"b\":2}", "{\"a\":1,\"z\":{\"y\":1},\"b\":2}");
}

static void test_merge_empty_src_changes_nothing(void **state) {
  assert_merge("{\"a\":1}", "{}", "{\"a\":1}");
}

static void test_merge_copies_src_values(void **state) {
  struct jv *d = parse_ok("{}");
  struct jv *s = parse_ok("{\"a\":{\"b\":1}}");
  assert_int_equal(jv_merge(d, s), 0);
  jv_free(s);
  assert_dump(d, "{\"a\":{\"b\":1}}");
  jv_free(d);
}

/* ---- delete_path ---- */

static void check_delete(const char *doc, const char *path, const char *want, const char *file,
                         int line) {
  struct jv *v = parse_ok(doc);
  jv_obj_delete_path(v, path);
  check_dump(v, want, file, line);
  jv_free(v);
}

#define assert_delete(doc, path, want) check_delete((doc), (path), (want), __FILE__, __LINE__)

#define DOC "{\"a\":1,\"remote_data\":{\"data\":{\"x\":1},\"keep\":2},\"b\":3}"

static void test_delete_top_level_key(void **state) {
  assert_delete(DOC, "a", "{\"remote_data\":{\"data\":{\"x\":1},\"keep\":2},\"b\":3}");
  assert_delete(DOC, "b", "{\"a\":1,\"remote_data\":{\"data\":{\"x\":1},\"keep\":2}}");
  assert_delete(DOC, "remote_data", "{\"a\":1,\"b\":3}");
}

static void test_delete_dotted_path(void **state) {
  assert_delete(DOC, "remote_data.data", "{\"a\":1,\"remote_data\":{\"keep\":2},\"b\":3}");
  assert_delete(DOC, "remote_data.data.x",
                "{\"a\":1,\"remote_data\":{\"data\":{},\"keep\":2},\"b\":3}");
}

static void test_delete_absent_path_is_noop(void **state) {
  assert_delete(DOC, "zz", DOC);
  assert_delete(DOC, "remote_data.missing.deeper", DOC);
  assert_delete(DOC, "a.b", DOC);
  assert_delete(DOC, "remote_dat", DOC);
  assert_delete(DOC, "remote_data.", DOC);
}

/* remote_data is an array when a request made several calls: the path reaches each one. */
static void test_delete_walks_into_array_elements(void **state) {
  assert_delete("{\"l\":[{\"x\":1,\"y\":2},{\"x\":3},4]}", "l.x", "{\"l\":[{\"y\":2},{},4]}");
  assert_delete("{\"l\":[{\"x\":1}]}", "l.0", "{\"l\":[{\"x\":1}]}");
  assert_delete("{\"l\":[[{\"x\":{\"z\":1,\"k\":2}}]]}", "l.x.z", "{\"l\":[[{\"x\":{\"k\":2}}]]}");
}

/* Found by fuzz_json: copying collapsed "a\u0000b" into "a" and lost a member. */
static void test_copy_keeps_keys_with_nul(void **state) {
  struct jv *v = parse_ok("{\"a\\u0000b\":1,\"a\":2}");
  struct jv *c = jv_copy(v);
  assert_int_equal(c->u.obj.n, 2);
  size_t n1, n2;
  char *d1 = jv_dump(v, &n1);
  char *d2 = jv_dump(c, &n2);
  assert_int_equal(n1, n2);
  assert_memory_equal(d1, d2, n1);
  free(d1);
  free(d2);
  jv_free(v);
  jv_free(c);
}

static void test_delete_on_non_object_is_noop(void **state) {
  struct jv *v = parse_ok("[1]");
  jv_obj_delete_path(v, "a");
  jv_obj_delete_path(NULL, "a");
  assert_dump(v, "[1]");
  jv_free(v);
}

int main(void) {
  unit_filters_from_env();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_number_text_kept_exactly),
      cmocka_unit_test(test_number_node_holds_source_text),
      cmocka_unit_test(test_scalars_and_empty_containers_round_trip),
      cmocka_unit_test(test_member_order_kept),
      cmocka_unit_test(test_string_escapes_round_trip),
      cmocka_unit_test(test_unicode_escape_decoded),
      cmocka_unit_test(test_duplicate_key_refused_unless_lenient),
      cmocka_unit_test(test_malformed_json_rejected),
      cmocka_unit_test(test_parse_error_does_not_echo_input),
      cmocka_unit_test(test_depth_cap_enforced),
      cmocka_unit_test(test_depth_cap_never_above_64),
      cmocka_unit_test(test_constructors),
      cmocka_unit_test(test_obj_set_replaces_in_place),
      cmocka_unit_test(test_obj_set_null_value_is_enomem),
      cmocka_unit_test(test_copy_is_deep),
      cmocka_unit_test(test_dump_rejects_invalid_utf8),
      cmocka_unit_test(test_merge_objects_merge_key_by_key),
      cmocka_unit_test(test_merge_is_deep),
      cmocka_unit_test(test_merge_arrays_replaced_not_concatenated),
      cmocka_unit_test(test_merge_src_wins_over_scalars),
      cmocka_unit_test(test_merge_object_replaces_scalar_and_back),
      cmocka_unit_test(test_merge_adds_new_keys_at_end),
      cmocka_unit_test(test_merge_empty_src_changes_nothing),
      cmocka_unit_test(test_merge_copies_src_values),
      cmocka_unit_test(test_delete_top_level_key),
      cmocka_unit_test(test_delete_dotted_path),
      cmocka_unit_test(test_delete_absent_path_is_noop),
      cmocka_unit_test(test_delete_walks_into_array_elements),
      cmocka_unit_test(test_delete_on_non_object_is_noop),
      cmocka_unit_test(test_copy_keeps_keys_with_nul),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
