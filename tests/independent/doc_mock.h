/*
 * doc_mock.h: the seam between the independent mock's HTTP server (doc_mock.c) and its provider
 * rules (doc_rules.c). The rules are written from the providers' public documentation only, so
 * that a misreading shared by unicrm and the teammate's mock CRM cannot pass unnoticed.
 */
#ifndef UCRM_DOC_MOCK_H
#define UCRM_DOC_MOCK_H

#include <stddef.h>

/* One parsed request; every pointer is owned by the server and lives for the call only. */
struct dm_req {
  const char *method;
  const char *path;      /* request target without the query string */
  const char *auth;      /* Authorization header, "" when absent */
  const char *api_token; /* x-api-token header, "" when absent */
  const char *ctype;     /* Content-Type header, "" when absent */
  const char *body;      /* NUL-terminated, "" when the request had none */
  size_t body_len;
};

/* The answer; body is malloc'd (NULL for an empty body) and freed by the caller. */
struct dm_reply {
  int status;
  const char *headers; /* extra header lines, each ending in CRLF, static storage; or NULL */
  char *body;
  size_t len;
};

/*
 * Answers a provider request as the documented API would. The provider is chosen by the
 * credential (each test account stands for a different host), falling back to the path prefix
 * when the credential is unknown. Never fails: any violation becomes the provider's error.
 */
void dm_rules_answer(const struct dm_req *req, struct dm_reply *reply);

#endif
