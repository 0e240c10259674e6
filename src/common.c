#include "common.h"

#include <stdarg.h>
#include <stdio.h>

const char *ucrm_strerror(int code) {
  switch (code) {
  case UCRM_OK:
    return "ok";
  case UCRM_ENOMEM:
    return "out of memory";
  case UCRM_ETOOBIG:
    return "over its size limit";
  case UCRM_EINVAL:
    return "invalid input";
  case UCRM_EIO:
    return "input/output error";
  }
  return "unknown error";
}

int ucrm_err_set(struct ucrm_err *err, int status, const char *fmt, ...) {
  if (err == NULL)
    return UCRM_EINVAL;

  err->status = status;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
  va_end(ap);
  return UCRM_EINVAL;
}
