#include "relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void relay_init(struct relay *r, struct srv_req *req, const struct ucrm_query *q,
                const struct ucrm_assoc *a) {
  memset(r, 0, sizeof(*r));
  r->req = req;
  r->q = q;
  r->a = a;
}

void relay_free(struct relay *r) {
  jstream_free(r->js);
  r->js = NULL;
}

static int relay_excluded(const struct relay *r, const char *field) {
  if (strcmp(field, "remote_data") == 0 && r->q->ignore_remote_data)
    return 1;
  for (size_t i = 0; i < r->q->nexclude; i++) {
    if (strcmp(r->q->exclude[i], field) == 0)
      return 1;
  }
  return 0;
}

void relay_stream_begin(struct relay *r, const char *extra) {
  if (r->started)
    return;
  srv_stream_begin(r->req, 200, "application/x-ndjson", extra);
  r->started = 1;
}

static void relay_write_tree(struct relay *r, struct jv *line) {
  size_t len = 0;
  char *text = line != NULL ? jv_dump(line, &len) : NULL;
  jv_free(line);
  if (text == NULL)
    return;
  text[len] = '\n'; /* jv_dump's NUL becomes the line's end */
  srv_stream_write(r->req, text, len + 1);
  free(text);
}

void relay_line(struct relay *r, const struct ucrm_call *call, const char *status,
                long remote_status, const struct jv *reply) {
  struct jv *line = ucrm_body_stream_line(call, status, remote_status, reply);
  ucrm_respond_shape(line, r->q);
  relay_write_tree(r, line);
}

static void relay_flush(void *data, const char *p, size_t n) {
  struct relay *r = data;
  srv_stream_write(r->req, p, n);
}

/* The fields of a line known before its body: everything but remote_data and status. */
static struct jv *relay_line_head(const struct ucrm_call *call, long remote_status) {
  struct jv *line = ucrm_body_stream_line(call, "applied", remote_status, NULL);
  jv_obj_delete_path(line, "status");
  jv_obj_delete_path(line, "remote_data");
  return line;
}

int relay_line_open(struct relay *r, const struct ucrm_call *call, long remote_status) {
  struct jv *head = relay_line_head(call, remote_status);
  ucrm_respond_shape(head, r->q);
  size_t len = 0;
  char *text = head != NULL ? jv_dump(head, &len) : NULL;
  jv_free(head);
  if (text == NULL)
    return UCRM_ENOMEM;

  /* Reopen the object: drop its closing brace and continue with remote_data. */
  struct ubuf out;
  ubuf_init(&out, len + 32);
  ubuf_append(&out, text, len - 1);
  free(text);
  r->js_failed = 0;
  r->js_error[0] = '\0';
  r->line_has_field = len > 2;
  if (!relay_excluded(r, "remote_data")) {
    ubuf_puts(&out, r->line_has_field ? ",\"remote_data\":" : "\"remote_data\":");
    r->line_has_field = 1;
    r->js = jstream_new("remote_data", r->q->exclude, r->q->nexclude, relay_flush, r);
    if (r->js == NULL) {
      ubuf_free(&out);
      return UCRM_ENOMEM;
    }
  }
  srv_stream_write(r->req, out.data, out.len);
  ubuf_free(&out);
  r->line_open = 1;
  return 0;
}

void relay_line_data(struct relay *r, const char *p, size_t n) {
  if (r->js != NULL && !r->js_failed)
    r->js_failed = jstream_feed(r->js, p, n) != 0;
}

int relay_line_close(struct relay *r, const char *status, const char *error) {
  int bad = 0;
  if (r->js != NULL) {
    bad = jstream_finish(r->js, r->js_error, sizeof(r->js_error)) != 0;
    jstream_free(r->js);
    r->js = NULL;
  }
  if (bad && error == NULL)
    error = r->js_error;

  /* The fields after remote_data, written with yajl so every string is escaped. */
  struct jv *tail = jv_new(JV_OBJECT);
  if (tail != NULL && !relay_excluded(r, "status"))
    jv_obj_set(tail, "status", jv_new_string(status, strlen(status)));
  if (tail != NULL && error != NULL)
    jv_obj_set(tail, "error", jv_new_string(error, strlen(error)));
  size_t len = 0;
  char *text = tail != NULL ? jv_dump(tail, &len) : NULL;
  jv_free(tail);

  struct ubuf out;
  ubuf_init(&out, len + 8);
  /* text is "{...}": splice its members in after what the line already holds. */
  if (text != NULL && len > 2) {
    if (r->line_has_field)
      ubuf_putc(&out, ',');
    ubuf_append(&out, text + 1, len - 1);
  } else {
    ubuf_putc(&out, '}');
  }
  ubuf_putc(&out, '\n');
  free(text);
  srv_stream_write(r->req, out.data, out.len);
  ubuf_free(&out);
  r->line_open = 0;
  return bad ? -1 : 0;
}

static struct jv *relay_applied(const struct relay *r, const struct ucrm_result *res, size_t nres) {
  struct jv *assoc = jv_new(JV_OBJECT);
  for (size_t i = 0; assoc != NULL && i < nres; i++) {
    if (res[i].status != UCRM_LINK_APPLIED)
      continue;
    const char *kind = ucrm_kind_name(res[i].link.kind);
    struct jv *list = jv_obj_get(assoc, kind);
    if (list == NULL) {
      list = jv_new(JV_ARRAY);
      if (jv_obj_set(assoc, kind, list) != 0)
        break;
    }
    struct jv *item = jv_new(JV_OBJECT);
    if (item != NULL)
      jv_obj_set(item, "id", jv_new_string(res[i].link.id, strlen(res[i].link.id)));
    jv_arr_push(list, item);
  }
  return assoc;
}

void relay_summary(struct relay *r, const struct ucrm_result *res, size_t nres, const char *status,
                   const char *error) {
  struct jv *o = jv_new(JV_OBJECT);
  struct jv *errors = jv_new(JV_ARRAY);
  if (o != NULL && errors != NULL) {
    const char *ent = ucrm_entity_name(r->a->entity);
    jv_obj_set(o, "entity_id", jv_new_string(r->a->entity_id, strlen(r->a->entity_id)));
    jv_obj_set(o, "entity", jv_new_string(ent, strlen(ent)));
    jv_obj_set(o, "associations", relay_applied(r, res, nres));
    jv_obj_set(o, "status", jv_new_string(status, strlen(status)));
    if (error != NULL)
      jv_arr_push(errors, jv_new_string(error, strlen(error)));
    jv_obj_set(o, "errors", errors);
    errors = NULL;
  }
  jv_free(errors);
  ucrm_respond_shape(o, r->q);
  relay_write_tree(r, o);
  srv_stream_end(r->req);
}

void relay_raw_begin(struct relay *r, int status, const char *content_type, const char *extra) {
  srv_stream_begin(r->req, status, content_type, extra);
  r->started = 1;
}

void relay_raw_data(struct relay *r, const char *p, size_t n) {
  srv_stream_write(r->req, p, n);
}

void relay_raw_end(struct relay *r) {
  srv_stream_end(r->req);
}

int relay_backpressured(const struct relay *r) {
  return srv_req_pending_bytes(r->req) > RELAY_HIGH_WATER;
}
