/*
 * harness.h: what the integration tests share: starting the mock CRM and unicrm as real
 * processes on ephemeral ports, real HTTP exchanges with them, and the mock's record of the
 * calls it received.
 *
 * Set UNICRM_WRAPPER (e.g. "valgrind --error-exitcode=99 --leak-check=full") to run unicrm
 * under a tool; h_stop then fails the test if the process did not exit 0.
 */
#ifndef UCRM_TEST_HARNESS_H
#define UCRM_TEST_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include <yajl/yajl_tree.h>

struct h_proc {
  pid_t pid;
  int port;
  char log_path[256];
  char cfg_path[256];
};

struct h_resp {
  long status;
  char *body;
  size_t len;
  char *headers; /* raw header block, lower-cased names */
};

/* Fixed test credentials the mock accepts. */
#define H_PD_TOKEN "pd-test-token"
#define H_CLOSE_KEY "close-test-key"
#define H_ATTIO_TOKEN "attio-test-token"
#define H_SF_TOKEN "sf-test-token"

/* Account ids of the test config. */
#define H_PIPEDRIVE "62f44730-dd91-461e-bd6a-aedd9e0ad79d"
#define H_CLOSE "0b6f8e3a-4c1d-4e2b-9a7f-3d5c6b7a8e91"
#define H_ATTIO "7c2d9e4f-1a3b-4c5d-8e6f-9a0b1c2d3e4f"
#define H_SALESFORCE "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
#define H_SALESFORCE_NOREFRESH "b1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
#define H_CLOSE_BEARER "0c6f8e3a-4c1d-4e2b-9a7f-3d5c6b7a8e91"
#define H_PIPEDRIVE_OAUTH "72f44730-dd91-461e-bd6a-aedd9e0ad79d"

int h_mock_start(struct h_proc *m);

/* For a forked child: end with the test process, even if that one is killed. */
void h_die_with_parent(void);

/*
 * The parent's half of starting a mock that prints "port=N" as its first line on stdout, with
 * that stdout on the pipe fds: closes fds[1], reads the line from fds[0], closes it, and sets
 * p->port. 0 on success, -1 if no such line came.
 */
int h_proc_read_port(struct h_proc *p, int fds[2]);

/*
 * Starts unicrm against the mock on mock_port. extra is inserted at the top level of the
 * config (e.g. "\"upstream\":{\"max_retries\":0},"), or NULL.
 */
int h_unicrm_start(struct h_proc *u, int mock_port, const char *extra);

/* The same with extra command-line arguments (e.g. "--workers 2 --listen 127.0.0.1:N"). */
int h_unicrm_start_args(struct h_proc *u, int mock_port, const char *extra, const char *args);

/* Starts unicrm against the mock with --log-level warn, so requests log nothing (a count of
 * its system calls is then its own); on a free port, ready once it accepts. */
int h_unicrm_start_quiet(struct h_proc *u, int mock_port);

/* Starts unicrm against the mock at --log-level debug with stdin, stdout and stderr closed, on
 * a free port; ready once it accepts. */
int h_unicrm_start_closed_std(struct h_proc *u, int mock_port);

/* Starts unicrm with a config of the test's own (which must listen on 127.0.0.1:0). */
int h_unicrm_start_config(struct h_proc *u, const char *config_json);

/* SIGTERM and wait; returns the exit status (0 on a clean exit), -1 on a crash or timeout. */
int h_stop(struct h_proc *p);

int h_request(int port, const char *method, const char *target, const char *body,
              const char *header, struct h_resp *out);
void h_resp_free(struct h_resp *r);

/* The value of a response header (case-insensitive name), copied into out; NULL if absent. */
const char *h_header(const struct h_resp *r, const char *name, char *out, size_t outlen);

/* POSTs body to /unified/crm/associations?integrated_account_id=<acct><query>. */
int h_associate(int port, const char *acct, const char *query, const char *body,
                struct h_resp *out);

yajl_val h_json(const char *text);
const char *h_str(yajl_val v, const char *path); /* "a/b/0/c"; NULL if absent or not string */
long long h_int(yajl_val v, const char *path, long long fallback);
yajl_val h_get(yajl_val v, const char *path);

int h_mock_reset(int mock_port);
int h_mock_post(int mock_port, const char *path, const char *json);
yajl_val h_mock_calls(int mock_port); /* caller frees with yajl_tree_free */
size_t h_mock_ncalls(int mock_port);

/* Whether the file holds the string; for checking logs. */
int h_file_contains(const char *path, const char *needle);

/* How many times the string occurs in the file (lines up to 4 KiB); -1 if it cannot be read. */
int h_file_count(const char *path, const char *needle);

/* Waits up to timeout_ms for the file to hold the string (a log line written just after the
 * answer went out). */
int h_file_wait(const char *path, const char *needle, int timeout_ms);

/* A raw TCP exchange: sends data, reads until the peer closes or timeout_ms passes. */
int h_raw(int port, const char *data, size_t len, int timeout_ms, char *out, size_t outlen);

/* A TCP connection to 127.0.0.1:port, for the caller to close; -1 if it was refused. */
int h_connect(int port);

/*
 * Reads fd into out until the peer closes, out is full, or nothing arrives for timeout_ms
 * (-1: no limit). out is NUL-terminated; returns the bytes read. fd stays open.
 */
size_t h_read_to_close(int fd, int timeout_ms, char *out, size_t outlen);

/*
 * A port on 127.0.0.1 that was free when asked: bound to port 0, read back, released. Another
 * process may take it before the test binds it.
 */
int h_free_port(void);

/* Resident memory of process pid (VmRSS in /proc/PID/status) in KiB; -1 if unknown. */
long h_rss_kib(pid_t pid);

/* Write system calls process pid has made so far (syscw in /proc/PID/io); -1 if unknown. */
long long h_write_calls(pid_t pid);

/* Lines in a log file. */
long long h_log_lines(const char *path);

/*
 * Sends req on a new connection to p, reads the answer into out until p closes, and returns
 * the write system calls p made meanwhile (-1 on a failed exchange). The count includes p's
 * log writes; the mock's calls go by sendto, which it does not count.
 */
long long h_exchange_writes(const struct h_proc *p, const char *req, char *out, size_t outlen);

#endif
