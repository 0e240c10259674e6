/*
 * mock_store.c: what the mock remembers between requests: the last value written to each
 * record field (GET /_mock/state) and the log of calls (GET /_mock/calls).
 */
#include <stdlib.h>
#include <string.h>

#include "mock.h"

/* ---- record state ---- */

void mock_store_init(struct mock_store *st) {
  memset(st, 0, sizeof(*st));
}

static size_t mock_hash(const char *s) {
  size_t h = 1469598103934665603ULL & SIZE_MAX;

  for (; *s != '\0'; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL & SIZE_MAX;
  }
  return h;
}

static void mock_record_free(struct mock_record *rec) {
  for (size_t i = 0; i < rec->nfields; i++) {
    free(rec->fields[i].name);
    yajl_tree_free(rec->fields[i].value);
  }
  free(rec->fields);
  free(rec->key);
  free(rec);
}

void mock_store_clear(struct mock_store *st) {
  struct mock_record *rec = st->first;

  while (rec != NULL) {
    struct mock_record *next = rec->order_next;

    mock_record_free(rec);
    rec = next;
  }
  free(st->buckets);
  mock_store_init(st);
}

/* Doubles the table once it is as full as it is wide, keeping chains short. */
static void mock_store_grow(struct mock_store *st) {
  size_t n = st->nbuckets ? st->nbuckets * 2 : 256;
  struct mock_record **b = mock_xmalloc(n * sizeof(*b));

  memset(b, 0, n * sizeof(*b));
  for (struct mock_record *rec = st->first; rec != NULL; rec = rec->order_next) {
    size_t i = mock_hash(rec->key) & (n - 1);

    rec->bucket_next = b[i];
    b[i] = rec;
  }
  free(st->buckets);
  st->buckets = b;
  st->nbuckets = n;
}

const struct mock_record *mock_store_get(const struct mock_store *st, const char *key) {
  if (st->nbuckets == 0)
    return NULL;

  struct mock_record *rec = st->buckets[mock_hash(key) & (st->nbuckets - 1)];
  while (rec != NULL && strcmp(rec->key, key) != 0)
    rec = rec->bucket_next;
  return rec;
}

static struct mock_record *mock_store_add(struct mock_store *st, const char *key) {
  if (st->count >= st->nbuckets)
    mock_store_grow(st);

  struct mock_record *rec = mock_xmalloc(sizeof(*rec));
  size_t i = mock_hash(key) & (st->nbuckets - 1);

  memset(rec, 0, sizeof(*rec));
  rec->key = mock_xstrdup(key);
  rec->bucket_next = st->buckets[i];
  st->buckets[i] = rec;
  if (st->last)
    st->last->order_next = rec;
  else
    st->first = rec;
  st->last = rec;
  st->count++;
  return rec;
}

void mock_store_set(struct mock_store *st, const char *key, const char *name, yajl_val value) {
  struct mock_record *rec = (struct mock_record *)mock_store_get(st, key);

  if (rec == NULL)
    rec = mock_store_add(st, key);

  yajl_val copy = mock_json_clone(value);
  for (size_t i = 0; i < rec->nfields; i++) {
    if (strcmp(rec->fields[i].name, name) == 0) {
      yajl_tree_free(rec->fields[i].value);
      rec->fields[i].value = copy;
      return;
    }
  }
  rec->fields = mock_xrealloc(rec->fields, (rec->nfields + 1) * sizeof(*rec->fields));
  rec->fields[rec->nfields].name = mock_xstrdup(name);
  rec->fields[rec->nfields].value = copy;
  rec->nfields++;
}

static int mock_name_in(const char *name, const char *const *list) {
  for (; list != NULL && *list != NULL; list++) {
    if (strcmp(name, *list) == 0)
      return 1;
  }
  return 0;
}

void mock_store_set_all(struct mock_store *st, const char *key, yajl_val obj,
                        const char *const *skip) {
  for (size_t i = 0; i < obj->u.object.len; i++) {
    const char *name = obj->u.object.keys[i];

    if (!mock_name_in(name, skip))
      mock_store_set(st, key, name, obj->u.object.values[i]);
  }
}

yajl_val mock_record_field(const struct mock_record *rec, const char *name) {
  for (size_t i = 0; rec != NULL && i < rec->nfields; i++) {
    if (strcmp(rec->fields[i].name, name) == 0)
      return rec->fields[i].value;
  }
  return NULL;
}

void mock_store_gen(const struct mock_store *st, yajl_gen g) {
  yajl_gen_map_open(g);
  for (const struct mock_record *rec = st->first; rec != NULL; rec = rec->order_next) {
    mock_gen_str(g, rec->key);
    yajl_gen_map_open(g);
    for (size_t i = 0; i < rec->nfields; i++) {
      mock_gen_str(g, rec->fields[i].name);
      mock_gen_val(g, rec->fields[i].value);
    }
    yajl_gen_map_close(g);
  }
  yajl_gen_map_close(g);
}

/* ---- call log ---- */

void mock_calls_init(struct mock_calls *calls, size_t max) {
  memset(calls, 0, sizeof(*calls));
  calls->max = max;
}

static void mock_call_free(struct mock_call *call) {
  for (size_t i = 0; i < call->nheaders; i++) {
    free(call->headers[i].name);
    free(call->headers[i].value);
  }
  free(call->headers);
  free(call->path);
  free(call->query);
  free(call->body);
  free(call);
}

static struct mock_call *mock_call_take(struct mock_req *req, int status) {
  struct mock_call *call = mock_xmalloc(sizeof(*call));

  call->method = req->method;
  call->path = req->path;
  call->query = req->query;
  call->headers = req->headers;
  call->nheaders = req->nheaders;
  call->body_len = req->body.len;
  call->body = mock_buf_steal(&req->body);
  call->status = status;

  req->path = NULL;
  req->query = NULL;
  req->host = NULL;
  req->headers = NULL;
  req->nheaders = 0;
  return call;
}

void mock_calls_record(struct mock_calls *calls, struct mock_req *req, int status) {
  if (calls->max == 0) {
    calls->dropped++;
    return;
  }

  struct mock_call *call = mock_call_take(req, status);

  if (calls->count == calls->max) {
    mock_call_free(calls->ring[calls->head]);
    calls->ring[calls->head] = call;
    calls->head = (calls->head + 1) % calls->max;
    calls->dropped++;
    return;
  }

  /* The ring only wraps once it is full, so until then head is 0 and growing is a realloc. */
  if (calls->count == calls->alloc) {
    size_t n = calls->alloc ? calls->alloc * 2 : 64;

    if (n > calls->max)
      n = calls->max;
    calls->ring = mock_xrealloc(calls->ring, n * sizeof(*calls->ring));
    calls->alloc = n;
  }
  calls->ring[calls->count++] = call;
}

void mock_calls_clear(struct mock_calls *calls) {
  for (size_t i = 0; i < calls->count; i++)
    mock_call_free(calls->ring[i]);
  free(calls->ring);
  mock_calls_init(calls, calls->max);
}

/* Repeated header names are joined with ", " so the JSON object has unique keys. */
static void mock_call_gen_headers(const struct mock_call *call, yajl_gen g) {
  yajl_gen_map_open(g);
  for (size_t i = 0; i < call->nheaders; i++) {
    const char *name = call->headers[i].name;
    size_t first = 0;

    while (strcmp(call->headers[first].name, name) != 0)
      first++;
    if (first < i)
      continue;

    struct mock_buf joined;
    mock_buf_init(&joined, SIZE_MAX);
    mock_buf_puts(&joined, call->headers[i].value);
    for (size_t j = i + 1; j < call->nheaders; j++) {
      if (strcmp(call->headers[j].name, name) == 0)
        mock_buf_printf(&joined, ", %s", call->headers[j].value);
    }
    mock_gen_str(g, name);
    mock_gen_strn(g, mock_buf_cstr(&joined), joined.len);
    mock_buf_free(&joined);
  }
  yajl_gen_map_close(g);
}

static void mock_call_gen(const struct mock_call *call, yajl_gen g) {
  yajl_gen_map_open(g);
  mock_gen_str(g, "method");
  mock_gen_str(g, call->method);
  mock_gen_str(g, "path");
  mock_gen_str(g, call->path ? call->path : "");
  mock_gen_str(g, "query");
  mock_gen_str(g, call->query ? call->query : "");
  mock_gen_str(g, "headers");
  mock_call_gen_headers(call, g);
  mock_gen_str(g, "body");
  mock_gen_strn(g, call->body ? call->body : "", call->body_len);
  mock_gen_str(g, "status");
  mock_gen_int(g, call->status);
  yajl_gen_map_close(g);
}

void mock_calls_gen(const struct mock_calls *calls, yajl_gen g) {
  yajl_gen_array_open(g);
  for (size_t i = 0; i < calls->count; i++) {
    size_t at = calls->count == calls->max ? (calls->head + i) % calls->max : i;

    mock_call_gen(calls->ring[at], g);
  }
  yajl_gen_array_close(g);
}
