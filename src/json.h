/*
 * json.h: a small JSON value tree ("jv") on top of yajl's event parser.
 *
 * Why our own tree and not yajl_tree: we need a depth cap enforced while parsing (yajl's parser
 * has none), numbers kept as their exact source text (so 20-digit integers and 1e400 pass
 * through unchanged), and a deep merge for remote_data.
 *
 * Ownership: every jv returned by a jv_* constructor or by jv_parse belongs to the caller, who
 * frees it with jv_free. jv_obj_set and jv_arr_push take ownership of the value passed in, even
 * when they fail. Strings inside a jv are NUL-terminated copies.
 */
#ifndef UCRM_JSON_H
#define UCRM_JSON_H

#include <stddef.h>

#include <yajl/yajl_gen.h>

enum jv_type { JV_NULL, JV_FALSE, JV_TRUE, JV_NUMBER, JV_STRING, JV_ARRAY, JV_OBJECT };

struct jv;

struct jv_member {
  char *key;
  size_t klen;
  struct jv *val;
};

struct jv {
  enum jv_type type;
  union {
    struct {
      char *s; /* JV_STRING: the decoded text; JV_NUMBER: the number as written */
      size_t len;
    } str;
    struct {
      struct jv **items;
      size_t n, cap;
    } arr;
    struct {
      struct jv_member *m;
      size_t n, cap;
    } obj;
  } u;
};

#define JV_MAX_DEPTH 64

/*
 * Parses one JSON document. Nesting deeper than max_depth, invalid UTF-8, a repeated key in
 * an object, trailing bytes and anything but strict JSON fail with UCRM_EINVAL and a short
 * reason in err (no input echoed).
 */
int jv_parse(const char *buf, size_t len, int max_depth, struct jv **out, char *err, size_t errlen);

/*
 * Like jv_parse, for bodies we did not write (provider replies): invalid UTF-8 inside strings
 * is replaced by U+FFFD instead of failing the parse, so the rest of the reply survives.
 */
int jv_parse_lenient(const char *buf, size_t len, int max_depth, struct jv **out, char *err,
                     size_t errlen);

/* Writes s into out replacing invalid UTF-8 with U+FFFD; out must hold 3 * n bytes. */
size_t ucrm_utf8_sanitize(const unsigned char *s, size_t n, unsigned char *out);

/* A string value from bytes that may not be valid UTF-8 (they are repaired). */
struct jv *jv_new_string_utf8(const char *s, size_t len);

struct jv *jv_new(enum jv_type type);
struct jv *jv_new_string(const char *s, size_t len);
struct jv *jv_new_number(const char *text, size_t len); /* text must be a valid JSON number */
struct jv *jv_new_int(long long n);
struct jv *jv_copy(const struct jv *v);
void jv_free(struct jv *v);

struct jv *jv_obj_get(const struct jv *obj, const char *key);
int jv_obj_set(struct jv *obj, const char *key, struct jv *val); /* replaces an existing key */
int jv_arr_push(struct jv *arr, struct jv *val);

/*
 * Deletes obj[key]; a dotted path ("a.b.c") walks into nested objects, and through arrays
 * into each of their elements. No-op when absent.
 */
void jv_obj_delete_path(struct jv *obj, const char *path);

/*
 * Merges src into dst, both objects: objects merge key by key, anything else in src replaces
 * what dst had. dst is modified; src is only read.
 */
int jv_merge(struct jv *dst, const struct jv *src);

/* Writes v with g; returns 0 or the first yajl_gen_status that was not ok, negated. */
int jv_gen(yajl_gen g, const struct jv *v);

/* Serialises v into a malloc'ed, NUL-terminated string (caller frees). */
char *jv_dump(const struct jv *v, size_t *len);

/* Frees the generator jv_dump keeps between calls (at exit, for leak checkers). */
void jv_release(void);

#endif
