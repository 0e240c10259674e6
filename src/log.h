/*
 * log.h: one line per event on stderr, as key=value pairs.
 *
 * Every line starts with ts=, level= and comp=; the caller adds the rest as a preformatted
 * "key=value key=value" string. Values that may hold spaces are quoted by ulog_quote. Callers
 * must never pass a credential, a request body or a query value.
 *
 * Lines go out one write each, unless held: then they wait (4 KiB at most) until ulog_flush.
 * A worker attaches the log to its loop, which flushes right before the loop blocks, so the
 * lines of a loop turn cost one write and none waits while the loop sleeps. Warnings and
 * errors always go out at once. The module is not thread-safe; unicrm has one thread.
 */
#ifndef UCRM_LOG_H
#define UCRM_LOG_H

#include <stddef.h>

enum ulog_level { ULOG_DEBUG, ULOG_INFO, ULOG_WARN, ULOG_ERROR };

void ulog_set_level(enum ulog_level level);
int ulog_parse_level(const char *name, enum ulog_level *out);
int ulog_enabled(enum ulog_level level);

struct uv_loop_s;

/* Holds lines until ulog_flush (on) or writes each at once (off, the default; flushes). */
void ulog_hold(int on);
void ulog_flush(void);

/*
 * Holds lines from now on and flushes them in loop's prepare phase. Call it before starting
 * any other prepare handle: libuv runs the handle started last first, so this one runs after
 * every other and writes what they logged too. ulog_detach flushes, stops holding and closes
 * the handle (the loop cannot end while it is attached). One loop at a time.
 */
void ulog_attach(struct uv_loop_s *loop);
void ulog_detach(void);

void ulog(enum ulog_level level, const char *comp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Writes s into out as a log value: bare when it is a plain token, otherwise in double quotes
 * with quotes, backslashes and control bytes escaped. Truncates to fit outlen.
 */
const char *ulog_quote(char *out, size_t outlen, const char *s);

#endif
