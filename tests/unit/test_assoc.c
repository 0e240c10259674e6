/* Unit tests for src/assoc.c: the request body of SPEC 3.2. */
#include "unit_helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assoc.h"
#include "buf.h"

static const char *body_for(const char *entity, const char *associations) {
  static char buf[8192];
  snprintf(buf, sizeof(buf), "{\"entity_id\":\"e1\",\"entity\":\"%s\",\"associations\":%s}", entity,
           associations);
  return buf;
}

static void parse_ok(const char *body, struct ucrm_assoc *a) {
  struct ucrm_err err = {0};
  if (ucrm_assoc_parse(body, strlen(body), a, &err) != 0)
    fail_msg("body rejected: %s", err.msg);
}

static void check_rejected(const char *body, size_t len, const char *needle, const char *file,
                           int line) {
  struct ucrm_assoc a;
  struct ucrm_err err = {0};
  _assert_int_equal(ucrm_assoc_parse(body, len, &a, &err), UCRM_EINVAL, file, line);
  _assert_int_equal(err.status, 400, file, line);
  unit_check_has(err.msg, needle, file, line);
  ucrm_assoc_free(&a);
}

/* The body is a 400 whose message holds needle. */
#define assert_body_rejected(body, needle)                                                         \
  check_rejected((body), strlen(body), (needle), __FILE__, __LINE__)

static void check_each_rejected(const char *fmt, const char *const *values, size_t n,
                                const char *needle, const char *file, int line) {
  for (size_t i = 0; i < n; i++) {
    char body[256];
    snprintf(body, sizeof(body), fmt, values[i]);
    check_rejected(body, strlen(body), needle, file, line);
  }
}

/* Every value of the array values, put in place of fmt's %s, makes a body rejected so. */
#define assert_each_rejected(fmt, values, needle)                                                  \
  check_each_rejected((fmt), (values), UCRM_ARRAY_LEN(values), (needle), __FILE__, __LINE__)

/* A body linking n opportunities, ids 1 to n, to one account. */
static void many_ids_body(struct ubuf *b, int n) {
  ubuf_puts(b, "{\"entity_id\":\"a\",\"entity\":\"accounts\","
               "\"associations\":{\"opportunities\":[");
  for (int i = 0; i < n; i++)
    ubuf_printf(b, "%s{\"id\":%d}", i ? "," : "", i + 1);
  ubuf_puts(b, "]}}");
}

/* ---- accepted bodies ---- */

/* Found by fuzz_body: a NUL inside a name let "leads\u0000x" pass for "leads". */
static void test_names_with_nul_rejected(void **state) {
  assert_body_rejected("{\"entity\":\"leads\\u0000x\",\"entity_id\":\"1\","
                       "\"associations\":{\"contacts\":[{\"id\":\"1\"}]}}",
                       "entity must be");
  assert_body_rejected("{\"entity\":\"leads\",\"entity_id\":\"1\","
                       "\"associations\":{\"contacts\\u0000x\":[{\"id\":\"1\"}]}}",
                       "NUL");
  assert_body_rejected("{\"entity\":\"leads\",\"entity_id\":\"1\",\"entity\\u0000\":1,"
                       "\"associations\":{\"contacts\":[{\"id\":\"1\"}]}}",
                       "NUL");
}

static void test_spec_example_parsed(void **state) {
  struct ucrm_assoc a;
  parse_ok("{\"entity_id\":\"adf21080-0e10-11eb-879b-05d71fb426ec\",\"entity\":\"leads\","
           "\"associations\":{\"contacts\":[{\"id\":\"123\"}],\"accounts\":[{\"id\":\"456\"}]},"
           "\"remote_data\":{\"visible_to\":\"3\"}}",
           &a);

  assert_string_equal(a.entity_id, "adf21080-0e10-11eb-879b-05d71fb426ec");
  assert_int_equal(a.entity, UCRM_ENT_LEADS);
  assert_int_equal(a.kinds[UCRM_KIND_CONTACTS].n, 1);
  assert_string_equal(a.kinds[UCRM_KIND_CONTACTS].ids[0], "123");
  assert_int_equal(a.kinds[UCRM_KIND_ACCOUNTS].n, 1);
  assert_string_equal(a.kinds[UCRM_KIND_ACCOUNTS].ids[0], "456");
  assert_int_equal(a.norder, 2);
  assert_int_equal(a.order[0], UCRM_KIND_CONTACTS);
  assert_int_equal(a.order[1], UCRM_KIND_ACCOUNTS);
  assert_int_equal(ucrm_assoc_nlinks(&a), 2);

  char *rd = jv_dump(a.remote_data, NULL);
  assert_string_equal(rd, "{\"visible_to\":\"3\"}");
  free(rd);
  ucrm_assoc_free(&a);
}

static void test_remote_data_absent_or_null_is_null(void **state) {
  struct ucrm_assoc a;
  parse_ok(body_for("leads", "{\"contacts\":[{\"id\":\"1\"}]}"), &a);
  assert_null(a.remote_data);
  ucrm_assoc_free(&a);

  parse_ok("{\"entity_id\":\"e\",\"entity\":\"leads\",\"associations\":{\"contacts\":"
           "[{\"id\":\"1\"}]},\"remote_data\":null}",
           &a);
  assert_null(a.remote_data);
  ucrm_assoc_free(&a);
}

static void test_number_entity_id_read_as_decimal_text(void **state) {
  struct ucrm_assoc a;
  parse_ok("{\"entity_id\":12345678901234567890,\"entity\":\"contacts\","
           "\"associations\":{\"leads\":[{\"id\":\"l\"}]}}",
           &a);
  assert_string_equal(a.entity_id, "12345678901234567890");
  ucrm_assoc_free(&a);
}

static void test_number_link_ids_read_as_decimal_text(void **state) {
  struct ucrm_assoc a;
  parse_ok(body_for("leads", "{\"contacts\":[{\"id\":123}],\"accounts\":[{\"id\":-7}]}"), &a);
  assert_string_equal(a.kinds[UCRM_KIND_CONTACTS].ids[0], "123");
  assert_string_equal(a.kinds[UCRM_KIND_ACCOUNTS].ids[0], "-7");
  ucrm_assoc_free(&a);
}

static void test_duplicate_ids_merged_keeping_first_position(void **state) {
  struct ucrm_assoc a;
  parse_ok(body_for("accounts", "{\"opportunities\":[{\"id\":\"3\"},{\"id\":1},{\"id\":\"3\"},"
                                "{\"id\":\"1\"},{\"id\":2}]}"),
           &a);
  const struct ucrm_ids *ids = &a.kinds[UCRM_KIND_OPPORTUNITIES];
  assert_int_equal(ids->n, 3);
  assert_string_equal(ids->ids[0], "3");
  assert_string_equal(ids->ids[1], "1");
  assert_string_equal(ids->ids[2], "2");
  ucrm_assoc_free(&a);
}

static void test_acocunts_alias_merges_with_accounts(void **state) {
  struct ucrm_assoc a;
  parse_ok(body_for("contacts", "{\"accounts\":[{\"id\":\"1\"}],\"leads\":[{\"id\":\"l\"}],"
                                "\"acocunts\":[{\"id\":\"2\"},{\"id\":\"1\"}]}"),
           &a);
  const struct ucrm_ids *ids = &a.kinds[UCRM_KIND_ACCOUNTS];
  assert_int_equal(ids->n, 2);
  assert_string_equal(ids->ids[0], "1");
  assert_string_equal(ids->ids[1], "2");
  assert_int_equal(a.norder, 2);
  assert_int_equal(a.order[0], UCRM_KIND_ACCOUNTS);
  assert_int_equal(a.order[1], UCRM_KIND_LEADS);
  ucrm_assoc_free(&a);
}

static void test_acocunts_alone_is_accounts(void **state) {
  struct ucrm_assoc a;
  parse_ok(body_for("leads", "{\"acocunts\":[{\"id\":\"9\"}]}"), &a);
  assert_int_equal(a.kinds[UCRM_KIND_ACCOUNTS].n, 1);
  assert_string_equal(a.kinds[UCRM_KIND_ACCOUNTS].ids[0], "9");
  assert_int_equal(a.order[0], UCRM_KIND_ACCOUNTS);
  ucrm_assoc_free(&a);
}

static void test_acocunts_follows_accounts_rules(void **state) {
  assert_body_rejected(body_for("opportunities", "{\"acocunts\":[{\"id\":\"9\"}]}"),
                       "cannot be linked to entity opportunities");
}

static void test_request_order_of_kinds_kept(void **state) {
  struct ucrm_assoc a;
  parse_ok(body_for("contacts", "{\"organizations\":[{\"id\":\"o\"}],"
                                "\"leads\":[{\"id\":\"l\"}],"
                                "\"opportunities\":[{\"id\":\"p\"}],"
                                "\"accounts\":[{\"id\":\"a\"}]}"),
           &a);
  assert_int_equal(a.norder, 4);
  assert_int_equal(a.order[0], UCRM_KIND_ORGANIZATIONS);
  assert_int_equal(a.order[1], UCRM_KIND_LEADS);
  assert_int_equal(a.order[2], UCRM_KIND_OPPORTUNITIES);
  assert_int_equal(a.order[3], UCRM_KIND_ACCOUNTS);
  assert_int_equal(ucrm_assoc_nlinks(&a), 4);
  ucrm_assoc_free(&a);
}

static void test_id_of_256_bytes_accepted(void **state) {
  char id[257];
  memset(id, 'x', 256);
  id[256] = '\0';
  char body[1024];
  snprintf(body, sizeof(body),
           "{\"entity_id\":\"%s\",\"entity\":\"leads\",\"associations\":"
           "{\"contacts\":[{\"id\":\"%s\"}]}}",
           id, id);
  struct ucrm_assoc a;
  parse_ok(body, &a);
  assert_int_equal(strlen(a.entity_id), 256);
  assert_int_equal(strlen(a.kinds[UCRM_KIND_CONTACTS].ids[0]), 256);
  ucrm_assoc_free(&a);
}

static void test_thousand_ids_accepted(void **state) {
  struct ubuf b;
  ubuf_init(&b, 1 << 20);
  many_ids_body(&b, UCRM_IDS_MAX);
  struct ucrm_assoc a;
  parse_ok(ubuf_cstr(&b), &a);
  assert_int_equal(a.kinds[UCRM_KIND_OPPORTUNITIES].n, UCRM_IDS_MAX);
  ucrm_assoc_free(&a);
  ubuf_free(&b);
}

/* ---- rejected bodies ---- */

static void test_empty_body_rejected(void **state) {
  check_rejected("", 0, "empty", __FILE__, __LINE__);
}

static void test_not_json_rejected(void **state) {
  assert_body_rejected("{\"entity_id\":", "not valid JSON");
  assert_body_rejected("{} {}", "not valid JSON");
}

static void test_not_an_object_rejected(void **state) {
  assert_body_rejected("[]", "must be a JSON object");
  assert_body_rejected("\"leads\"", "must be a JSON object");
  assert_body_rejected("5", "must be a JSON object");
}

static void test_invalid_utf8_rejected(void **state) {
  assert_body_rejected("{\"entity_id\":\"\xff\xfe\",\"entity\":\"leads\",\"associations\":"
                       "{\"contacts\":[{\"id\":\"1\"}]}}",
                       "not valid JSON");
  assert_body_rejected("{\"entity_id\":\"a\",\"entity\":\"leads\",\"associations\":"
                       "{\"contacts\":[{\"id\":\"1\"}]},\"remote_data\":{\"\xc3\x28\":1}}",
                       "not valid JSON");
}

/* A body whose remote_data holds `levels` nested objects: depth levels + 1 in all. */
static void nested_body(struct ubuf *b, int levels) {
  ubuf_puts(b, "{\"entity_id\":\"e\",\"entity\":\"leads\",\"associations\":{\"contacts\":"
               "[{\"id\":\"1\"}]},\"remote_data\":");
  for (int i = 1; i < levels; i++)
    ubuf_puts(b, "{\"a\":");
  ubuf_puts(b, "{}");
  for (int i = 1; i < levels; i++)
    ubuf_putc(b, '}');
  ubuf_putc(b, '}');
}

static void test_nesting_of_64_accepted(void **state) {
  struct ubuf b;
  ubuf_init(&b, 1 << 16);
  nested_body(&b, JV_MAX_DEPTH - 1);
  struct ucrm_assoc a;
  parse_ok(ubuf_cstr(&b), &a);
  assert_non_null(a.remote_data);
  ucrm_assoc_free(&a);
  ubuf_free(&b);
}

static void test_nesting_deeper_than_64_rejected(void **state) {
  struct ubuf b;
  ubuf_init(&b, 1 << 16);
  nested_body(&b, JV_MAX_DEPTH);
  assert_body_rejected(ubuf_cstr(&b), "nesting deeper than 64");
  ubuf_free(&b);
}

static void test_unknown_top_level_field_rejected(void **state) {
  assert_body_rejected("{\"entity_id\":\"e\",\"entity\":\"leads\",\"associations\":{\"contacts\":"
                       "[{\"id\":\"1\"}]},\"extra\":1}",
                       "unknown body field 'extra'");
}

static void test_entity_id_required(void **state) {
  assert_body_rejected("{\"entity\":\"leads\",\"associations\":{\"contacts\":[{\"id\":\"1\"}]}}",
                       "entity_id is required");
}

static void test_entity_id_empty_rejected(void **state) {
  assert_body_rejected("{\"entity_id\":\"\",\"entity\":\"leads\",\"associations\":{\"contacts\":"
                       "[{\"id\":\"1\"}]}}",
                       "entity_id must not be empty");
}

static void test_entity_id_wrong_type_rejected(void **state) {
  static const char *const bad[] = {"true", "null", "{}", "[\"1\"]"};
  assert_each_rejected("{\"entity_id\":%s,\"entity\":\"leads\",\"associations\":"
                       "{\"contacts\":[{\"id\":\"1\"}]}}",
                       bad, "entity_id must be a string or an integer");
}

static void test_entity_id_non_integer_number_rejected(void **state) {
  static const char *const bad[] = {"1.5", "1e3", "-0.5", "1E2"};
  assert_each_rejected("{\"entity_id\":%s,\"entity\":\"leads\",\"associations\":"
                       "{\"contacts\":[{\"id\":\"1\"}]}}",
                       bad, "entity_id must be a string or an integer");
}

static void test_entity_id_over_256_bytes_rejected(void **state) {
  char id[258];
  memset(id, 'x', 257);
  id[257] = '\0';
  char body[1024];
  snprintf(body, sizeof(body),
           "{\"entity_id\":\"%s\",\"entity\":\"leads\",\"associations\":"
           "{\"contacts\":[{\"id\":\"1\"}]}}",
           id);
  assert_body_rejected(body, "entity_id is longer than 256 bytes");
}

static void test_link_id_over_256_bytes_rejected(void **state) {
  char id[258];
  memset(id, '7', 257);
  id[257] = '\0';
  char assoc[512];
  snprintf(assoc, sizeof(assoc), "{\"contacts\":[{\"id\":\"1\"},{\"id\":\"%s\"}]}", id);
  assert_body_rejected(body_for("leads", assoc), "associations.contacts[1].id is longer than 256");
}

static void test_link_id_nul_byte_rejected(void **state) {
  assert_body_rejected(body_for("leads", "{\"contacts\":[{\"id\":\"a\\u0000b\"}]}"), "NUL");
}

static void test_link_id_non_integer_number_rejected(void **state) {
  assert_body_rejected(body_for("leads", "{\"contacts\":[{\"id\":1.5}]}"),
                       "associations.contacts[0].id must be a string or an integer");
  assert_body_rejected(body_for("leads", "{\"contacts\":[{\"id\":1e2}]}"),
                       "associations.contacts[0].id");
}

static void test_link_id_wrong_type_rejected(void **state) {
  assert_body_rejected(body_for("leads", "{\"contacts\":[{\"id\":true}]}"),
                       "associations.contacts[0].id");
  assert_body_rejected(body_for("leads", "{\"contacts\":[{\"id\":null}]}"),
                       "associations.contacts[0].id");
  assert_body_rejected(body_for("leads", "{\"contacts\":[{\"id\":\"\"}]}"),
                       "associations.contacts[0].id must not be empty");
}

static void test_link_item_shape_rejected(void **state) {
  assert_body_rejected(body_for("leads", "{\"contacts\":[\"1\"]}"), "associations.contacts[0]");
  assert_body_rejected(body_for("leads", "{\"contacts\":[{}]}"), "associations.contacts[0]");
  assert_body_rejected(body_for("leads", "{\"contacts\":[{\"id\":\"1\",\"x\":1}]}"),
                       "associations.contacts[0]");
  assert_body_rejected(body_for("leads", "{\"contacts\":[{\"ID\":\"1\"}]}"),
                       "associations.contacts[0]");
}

static void test_kind_list_not_array_rejected(void **state) {
  assert_body_rejected(body_for("leads", "{\"contacts\":{\"id\":\"1\"}}"),
                       "associations.contacts must be an array");
}

static void test_entity_required(void **state) {
  assert_body_rejected("{\"entity_id\":\"e\",\"associations\":{\"contacts\":[{\"id\":\"1\"}]}}",
                       "entity is required");
}

static void test_unknown_entity_rejected(void **state) {
  assert_body_rejected(body_for("deals", "{\"contacts\":[{\"id\":\"1\"}]}"), "entity must be");
  assert_body_rejected(body_for("Leads", "{\"contacts\":[{\"id\":\"1\"}]}"), "entity must be");
  assert_body_rejected("{\"entity_id\":\"e\",\"entity\":3,\"associations\":{}}", "entity must be");
}

static void test_associations_required(void **state) {
  assert_body_rejected("{\"entity_id\":\"e\",\"entity\":\"leads\"}", "associations is required");
}

static void test_associations_not_object_rejected(void **state) {
  assert_body_rejected(body_for("leads", "[]"), "associations must be an object");
}

static void test_empty_associations_rejected(void **state) {
  assert_body_rejected(body_for("leads", "{}"), "at least one id");
  assert_body_rejected(body_for("leads", "{\"contacts\":[],\"accounts\":[]}"), "at least one id");
}

static void test_unknown_kind_rejected(void **state) {
  assert_body_rejected(body_for("leads", "{\"people\":[{\"id\":\"1\"}]}"),
                       "associations.people is not a known kind");
  assert_body_rejected(body_for("leads", "{\"Contacts\":[{\"id\":\"1\"}]}"),
                       "associations.Contacts is not a known kind");
}

static void test_remote_data_must_be_object(void **state) {
  static const char *const bad[] = {"[]", "\"x\"", "1", "true"};
  assert_each_rejected("{\"entity_id\":\"e\",\"entity\":\"leads\",\"associations\":"
                       "{\"contacts\":[{\"id\":\"1\"}]},\"remote_data\":%s}",
                       bad, "remote_data must be an object");
}

static void test_more_than_thousand_ids_rejected(void **state) {
  struct ubuf b;
  ubuf_init(&b, 1 << 20);
  many_ids_body(&b, UCRM_IDS_MAX + 1);
  assert_body_rejected(ubuf_cstr(&b), "more than 1000 ids");
  ubuf_free(&b);
}

/* ---- the entity/kind table of SPEC 3.2 ---- */

/* allowed[entity][kind], written out from SPEC 3.2 rather than from the code. */
static const int spec_allowed[UCRM_ENT_COUNT][UCRM_KIND_COUNT] = {
    /* accounts, contacts, leads, opportunities, organizations */
    [UCRM_ENT_ACCOUNTS] = {0, 0, 0, 1, 0},
    [UCRM_ENT_OPPORTUNITIES] = {0, 0, 1, 0, 1},
    [UCRM_ENT_CONTACTS] = {1, 0, 1, 1, 1},
    [UCRM_ENT_LEADS] = {1, 1, 0, 0, 0},
};

static void test_kind_allowed_matches_spec_table(void **state) {
  for (int e = 0; e < UCRM_ENT_COUNT; e++) {
    for (int k = 0; k < UCRM_KIND_COUNT; k++)
      assert_int_equal(ucrm_kind_allowed((enum ucrm_entity)e, (enum ucrm_kind)k),
                       spec_allowed[e][k]);
  }
}

static void test_every_disallowed_pair_rejected_by_parse(void **state) {
  int rejected = 0;
  for (int e = 0; e < UCRM_ENT_COUNT; e++) {
    for (int k = 0; k < UCRM_KIND_COUNT; k++) {
      const char *ename = ucrm_entity_name((enum ucrm_entity)e);
      const char *kname = ucrm_kind_name((enum ucrm_kind)k);
      char assoc[128];
      snprintf(assoc, sizeof(assoc), "{\"%s\":[{\"id\":\"1\"}]}", kname);
      const char *body = body_for(ename, assoc);
      if (spec_allowed[e][k]) {
        struct ucrm_assoc a;
        parse_ok(body, &a);
        assert_int_equal(a.kinds[k].n, 1);
        ucrm_assoc_free(&a);
        continue;
      }
      char want[128];
      snprintf(want, sizeof(want), "associations.%s cannot be linked to entity %s", kname, ename);
      assert_body_rejected(body, want);
      rejected++;
    }
  }
  assert_int_equal(rejected, 11);
}

static void test_disallowed_kind_rejected_even_when_empty(void **state) {
  assert_body_rejected(body_for("leads", "{\"contacts\":[{\"id\":\"1\"}],\"leads\":[]}"),
                       "associations.leads cannot be linked to entity leads");
}

static void test_names_and_lookup(void **state) {
  static const char *const entities[] = {"accounts", "opportunities", "contacts", "leads"};
  for (int e = 0; e < UCRM_ENT_COUNT; e++) {
    enum ucrm_entity got;
    assert_string_equal(ucrm_entity_name((enum ucrm_entity)e), entities[e]);
    assert_int_equal(ucrm_entity_from_name(entities[e], &got), 0);
    assert_int_equal(got, e);
  }
  enum ucrm_entity got;
  assert_int_equal(ucrm_entity_from_name("deals", &got), UCRM_EINVAL);
  assert_string_equal(ucrm_kind_name(UCRM_KIND_ORGANIZATIONS), "organizations");
}

int main(void) {
  unit_filters_from_env();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_spec_example_parsed),
      cmocka_unit_test(test_remote_data_absent_or_null_is_null),
      cmocka_unit_test(test_number_entity_id_read_as_decimal_text),
      cmocka_unit_test(test_number_link_ids_read_as_decimal_text),
      cmocka_unit_test(test_duplicate_ids_merged_keeping_first_position),
      cmocka_unit_test(test_acocunts_alias_merges_with_accounts),
      cmocka_unit_test(test_acocunts_alone_is_accounts),
      cmocka_unit_test(test_acocunts_follows_accounts_rules),
      cmocka_unit_test(test_request_order_of_kinds_kept),
      cmocka_unit_test(test_id_of_256_bytes_accepted),
      cmocka_unit_test(test_thousand_ids_accepted),
      cmocka_unit_test(test_empty_body_rejected),
      cmocka_unit_test(test_not_json_rejected),
      cmocka_unit_test(test_not_an_object_rejected),
      cmocka_unit_test(test_invalid_utf8_rejected),
      cmocka_unit_test(test_nesting_of_64_accepted),
      cmocka_unit_test(test_nesting_deeper_than_64_rejected),
      cmocka_unit_test(test_unknown_top_level_field_rejected),
      cmocka_unit_test(test_entity_id_required),
      cmocka_unit_test(test_entity_id_empty_rejected),
      cmocka_unit_test(test_entity_id_wrong_type_rejected),
      cmocka_unit_test(test_entity_id_non_integer_number_rejected),
      cmocka_unit_test(test_entity_id_over_256_bytes_rejected),
      cmocka_unit_test(test_link_id_over_256_bytes_rejected),
      cmocka_unit_test(test_link_id_nul_byte_rejected),
      cmocka_unit_test(test_link_id_non_integer_number_rejected),
      cmocka_unit_test(test_link_id_wrong_type_rejected),
      cmocka_unit_test(test_link_item_shape_rejected),
      cmocka_unit_test(test_kind_list_not_array_rejected),
      cmocka_unit_test(test_entity_required),
      cmocka_unit_test(test_unknown_entity_rejected),
      cmocka_unit_test(test_associations_required),
      cmocka_unit_test(test_associations_not_object_rejected),
      cmocka_unit_test(test_empty_associations_rejected),
      cmocka_unit_test(test_unknown_kind_rejected),
      cmocka_unit_test(test_remote_data_must_be_object),
      cmocka_unit_test(test_more_than_thousand_ids_rejected),
      cmocka_unit_test(test_kind_allowed_matches_spec_table),
      cmocka_unit_test(test_every_disallowed_pair_rejected_by_parse),
      cmocka_unit_test(test_disallowed_kind_rejected_even_when_empty),
      cmocka_unit_test(test_names_and_lookup),
      cmocka_unit_test(test_names_with_nul_rejected),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
