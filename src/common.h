/*
 * common.h: error codes and the error record shared by every unicrm module.
 *
 * Functions return 0 on success or a negative UCRM_E* code. Functions that can fail because of
 * what a client sent also fill a struct ucrm_err with the HTTP status and a message meant for
 * that client; the message never holds a credential.
 */
#ifndef UCRM_COMMON_H
#define UCRM_COMMON_H

#include <stddef.h>

enum {
  UCRM_OK = 0,
  UCRM_ENOMEM = -1,  /* allocation failed */
  UCRM_ETOOBIG = -2, /* a capped buffer or list would pass its cap */
  UCRM_EINVAL = -3,  /* invalid input; the ucrm_err says which */
  UCRM_EIO = -4,     /* a system call or library call failed */
};

const char *ucrm_strerror(int code);

struct ucrm_err {
  int status;    /* HTTP status to answer with */
  char msg[512]; /* human-readable, safe to show to the client */
};

/* Fills err with status and a printf-style message; returns UCRM_EINVAL for convenience. */
int ucrm_err_set(struct ucrm_err *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define UCRM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A macro's value as a string literal: UCRM_STR(256) is "256". */
#define UCRM_STR_(x) #x
#define UCRM_STR(x) UCRM_STR_(x)

#endif
