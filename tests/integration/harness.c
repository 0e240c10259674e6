#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#ifndef H_BIN_DIR
#error "H_BIN_DIR must name the build directory holding unicrm and mock_crm"
#endif

/* A test killed by its timeout must not leave its mock and unicrm running. */
void h_die_with_parent(void) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
}

static void h_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int h_mock_start(struct h_proc *m) {
  int fds[2];
  if (pipe(fds) != 0)
    return -1;

  m->pid = fork();
  if (m->pid == 0) {
    h_die_with_parent();
    dup2(fds[1], 1);
    close(fds[0]);
    execl(H_BIN_DIR "/mock_crm", "mock_crm", "--listen", "127.0.0.1:0", (char *)NULL);
    _exit(127);
  }
  return h_proc_read_port(m, fds);
}

int h_proc_read_port(struct h_proc *p, int fds[2]) {
  close(fds[1]);

  char line[64] = {0};
  size_t n = 0;
  while (n < sizeof(line) - 1 && read(fds[0], line + n, 1) == 1 && line[n] != '\n')
    n++;
  close(fds[0]);
  p->log_path[0] = '\0';
  return sscanf(line, "port=%d", &p->port) == 1 ? 0 : -1;
}

static const char h_config_fmt[] =
    "{\"listen\":\"127.0.0.1:0\",%s\"integrated_accounts\":{"
    "\"" H_PIPEDRIVE "\":{\"provider\":\"pipedrive\",\"base_url\":\"http://127.0.0.1:%d/\","
    "\"credentials\":{\"api_token\":\"env:H_PD_TOKEN\"}},"
    "\"" H_PIPEDRIVE_OAUTH "\":{\"provider\":\"pipedrive\",\"base_url\":\"http://127.0.0.1:%d\","
    "\"credentials\":{\"access_token\":\"pd-oauth-token\"}},"
    "\"" H_CLOSE "\":{\"provider\":\"close\",\"base_url\":\"http://127.0.0.1:%d\","
    "\"credentials\":{\"api_key\":\"" H_CLOSE_KEY "\"}},"
    "\"" H_CLOSE_BEARER "\":{\"provider\":\"close\",\"base_url\":\"http://127.0.0.1:%d\","
    "\"credentials\":{\"access_token\":\"close-oauth-token\"}},"
    "\"" H_ATTIO "\":{\"provider\":\"attio\",\"base_url\":\"http://127.0.0.1:%d\","
    "\"credentials\":{\"access_token\":\"" H_ATTIO_TOKEN "\"}},"
    "\"" H_SALESFORCE "\":{\"provider\":\"salesforce\",\"base_url\":\"http://127.0.0.1:%d\","
    "\"credentials\":{\"access_token\":\"" H_SF_TOKEN "\",\"refresh_token\":\"sf-refresh-token\","
    "\"client_id\":\"sf-client\",\"client_secret\":\"sf-secret\","
    "\"token_url\":\"http://127.0.0.1:%d/services/oauth2/token\"}},"
    "\"" H_SALESFORCE_NOREFRESH "\":{\"provider\":\"salesforce\","
    "\"base_url\":\"http://127.0.0.1:%d\",\"credentials\":{\"access_token\":\"" H_SF_TOKEN "\","
    "\"api_version\":\"v60.0\"}}}}";

static int h_read_port(const char *log_path, int *port) {
  for (int i = 0; i < 300; i++) {
    FILE *f = fopen(log_path, "r");
    char line[1024];
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
      const char *p = strstr(line, "msg=listening addr=");
      const char *colon = p != NULL ? strchr(p + 19, ':') : NULL;
      if (colon != NULL && sscanf(colon + 1, "%d", port) == 1) {
        fclose(f);
        return 0;
      }
    }
    if (f != NULL)
      fclose(f);
    h_sleep_ms(20);
  }
  return -1;
}

int h_unicrm_start(struct h_proc *u, int mp, const char *extra) {
  return h_unicrm_start_args(u, mp, extra, "");
}

/* Starts unicrm with stderr on u->log_path, or with stdin, stdout and stderr closed. */
static void h_exec(struct h_proc *u, const char *args, int close_std) {
  u->pid = fork();
  if (u->pid == 0) {
    h_die_with_parent();
    if (close_std) {
      for (int fd = 0; fd <= 2; fd++)
        close(fd);
    } else {
      int fd = open(u->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(fd, 2);
    }
    const char *wrapper = getenv("UNICRM_WRAPPER");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "exec %s %s/unicrm --config %s --log-level debug %s",
             wrapper != NULL ? wrapper : "", H_BIN_DIR, u->cfg_path, args);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
}

static int h_spawn(struct h_proc *u, const char *args) {
  h_exec(u, args, 0);
  return h_read_port(u->log_path, &u->port);
}

static int h_paths(struct h_proc *u) {
  static int seq;
  seq++;
  snprintf(u->cfg_path, sizeof(u->cfg_path), "/tmp/unicrm-test-%d-%d.json", (int)getpid(), seq);
  snprintf(u->log_path, sizeof(u->log_path), "/tmp/unicrm-test-%d-%d.log", (int)getpid(), seq);
  setenv("H_PD_TOKEN", H_PD_TOKEN, 1);
  return 0;
}

static int h_write_config(struct h_proc *u, int mp, const char *extra) {
  h_paths(u);
  FILE *f = fopen(u->cfg_path, "w");
  if (f == NULL)
    return -1;
  fprintf(f, h_config_fmt, extra != NULL ? extra : "", mp, mp, mp, mp, mp, mp, mp, mp);
  fclose(f);
  return 0;
}

int h_unicrm_start_args(struct h_proc *u, int mp, const char *extra, const char *args) {
  if (h_write_config(u, mp, extra) != 0)
    return -1;
  return h_spawn(u, args);
}

/* Starts unicrm on a free port and waits until it accepts (a probe connection logs nothing). */
static int h_start_on_free_port(struct h_proc *u, int mp, const char *level, int close_std) {
  if (h_write_config(u, mp, NULL) != 0)
    return -1;
  u->port = h_free_port();
  char args[64];
  snprintf(args, sizeof(args), "--listen 127.0.0.1:%d --log-level %s", u->port, level);
  h_exec(u, args, close_std);

  for (int i = 0; i < 300; i++) {
    int fd = h_connect(u->port);
    if (fd >= 0) {
      close(fd);
      return 0;
    }
    h_sleep_ms(20);
  }
  return -1;
}

int h_unicrm_start_quiet(struct h_proc *u, int mp) {
  return h_start_on_free_port(u, mp, "warn", 0);
}

int h_unicrm_start_closed_std(struct h_proc *u, int mp) {
  return h_start_on_free_port(u, mp, "debug", 1);
}

int h_unicrm_start_config(struct h_proc *u, const char *config_json) {
  h_paths(u);
  FILE *f = fopen(u->cfg_path, "w");
  if (f == NULL)
    return -1;
  fputs(config_json, f);
  fclose(f);
  return h_spawn(u, "");
}

int h_stop(struct h_proc *p) {
  if (p->pid <= 0)
    return -1;
  kill(p->pid, SIGTERM);

  int status;
  for (int i = 0; i < 1500; i++) {
    pid_t r = waitpid(p->pid, &status, WNOHANG);
    if (r == p->pid) {
      p->pid = 0;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    h_sleep_ms(20);
  }
  kill(p->pid, SIGKILL);
  waitpid(p->pid, &status, 0);
  p->pid = 0;
  return -1;
}

struct h_sink {
  char *data;
  size_t len;
};

static size_t h_write(char *p, size_t size, size_t n, void *userp) {
  struct h_sink *s = userp;
  char *grown = realloc(s->data, s->len + n + 1);
  if (grown == NULL)
    return 0;
  memcpy(grown + s->len, p, n);
  s->len += n;
  grown[s->len] = '\0';
  s->data = grown;
  return n;
}

int h_request(int port, const char *method, const char *target, const char *body,
              const char *header, struct h_resp *out) {
  char url[8192];
  snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, target);

  struct h_sink b = {0}, h = {0};
  CURL *c = curl_easy_init();
  struct curl_slist *hl = curl_slist_append(NULL, "Expect:");
  if (header != NULL)
    hl = curl_slist_append(hl, header);

  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  if (body != NULL) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, h_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, h_write);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);

  CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);

  out->body = b.data != NULL ? b.data : strdup("");
  out->len = b.len;
  out->headers = h.data != NULL ? h.data : strdup("");
  return rc == CURLE_OK ? 0 : -1;
}

void h_resp_free(struct h_resp *r) {
  free(r->body);
  free(r->headers);
  r->body = NULL;
  r->headers = NULL;
}

const char *h_header(const struct h_resp *r, const char *name, char *out, size_t outlen) {
  size_t n = strlen(name);
  for (const char *p = r->headers; p != NULL && *p != '\0';) {
    if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
      const char *v = p + n + 1;
      while (*v == ' ')
        v++;
      size_t len = strcspn(v, "\r\n");
      snprintf(out, outlen, "%.*s", (int)len, v);
      return out;
    }
    p = strchr(p, '\n');
    p = p != NULL ? p + 1 : NULL;
  }
  return NULL;
}

int h_associate(int port, const char *acct, const char *query, const char *body,
                struct h_resp *out) {
  char target[4096];
  snprintf(target, sizeof(target), "/unified/crm/associations?integrated_account_id=%s%s", acct,
           query != NULL ? query : "");
  return h_request(port, "POST", target, body, "Content-Type: application/json", out);
}

yajl_val h_json(const char *text) {
  char err[256];
  return yajl_tree_parse(text, err, sizeof(err));
}

yajl_val h_get(yajl_val v, const char *path) {
  char buf[512];
  snprintf(buf, sizeof(buf), "%s", path);
  for (char *seg = strtok(buf, "/"); v != NULL && seg != NULL; seg = strtok(NULL, "/")) {
    if (YAJL_IS_ARRAY(v)) {
      size_t i = (size_t)atoi(seg);
      v = i < v->u.array.len ? v->u.array.values[i] : NULL;
    } else if (YAJL_IS_OBJECT(v)) {
      yajl_val next = NULL;
      for (size_t i = 0; i < v->u.object.len; i++) {
        if (strcmp(v->u.object.keys[i], seg) == 0)
          next = v->u.object.values[i];
      }
      v = next;
    } else {
      v = NULL;
    }
  }
  return v;
}

const char *h_str(yajl_val v, const char *path) {
  yajl_val s = h_get(v, path);
  return YAJL_IS_STRING(s) ? s->u.string : NULL;
}

long long h_int(yajl_val v, const char *path, long long fallback) {
  yajl_val n = h_get(v, path);
  return YAJL_IS_INTEGER(n) ? YAJL_GET_INTEGER(n) : fallback;
}

int h_mock_post(int mock_port, const char *path, const char *json) {
  struct h_resp r;
  int rc = h_request(mock_port, "POST", path, json != NULL ? json : "", NULL, &r);
  long st = r.status;
  h_resp_free(&r);
  return rc == 0 && st >= 200 && st < 300 ? 0 : -1;
}

int h_mock_reset(int mock_port) {
  return h_mock_post(mock_port, "/_mock/reset", "");
}

yajl_val h_mock_calls(int mock_port) {
  struct h_resp r;
  if (h_request(mock_port, "GET", "/_mock/calls", NULL, NULL, &r) != 0) {
    h_resp_free(&r);
    return NULL;
  }
  yajl_val v = h_json(r.body);
  h_resp_free(&r);
  return v;
}

size_t h_mock_ncalls(int mock_port) {
  yajl_val v = h_mock_calls(mock_port);
  size_t n = YAJL_IS_ARRAY(v) ? v->u.array.len : 0;
  yajl_tree_free(v);
  return n;
}

int h_file_contains(const char *path, const char *needle) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return 0;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  size_t got = buf != NULL ? fread(buf, 1, (size_t)n, f) : 0;
  fclose(f);
  if (buf == NULL)
    return 0;
  buf[got] = '\0';
  int found = strstr(buf, needle) != NULL;
  free(buf);
  return found;
}

int h_file_count(const char *path, const char *needle) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  char line[4096];
  int n = 0;
  while (fgets(line, sizeof(line), f) != NULL) {
    for (const char *p = strstr(line, needle); p != NULL; p = strstr(p + 1, needle))
      n++;
  }
  fclose(f);
  return n;
}

int h_file_wait(const char *path, const char *needle, int timeout_ms) {
  for (int waited = 0; waited <= timeout_ms; waited += 20) {
    if (h_file_contains(path, needle))
      return 1;
    h_sleep_ms(20);
  }
  return 0;
}

int h_raw(int port, const char *data, size_t len, int timeout_ms, char *out, size_t outlen) {
  int fd = h_connect(port);
  if (fd < 0)
    return -1;
  if (len > 0 && write(fd, data, len) != (ssize_t)len) {
    close(fd);
    return -1;
  }

  size_t got = h_read_to_close(fd, timeout_ms, out, outlen);
  close(fd);
  return (int)got;
}

int h_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

size_t h_read_to_close(int fd, int timeout_ms, char *out, size_t outlen) {
  size_t got = 0;
  struct pollfd p = {.fd = fd, .events = POLLIN};
  while (got < outlen - 1 && poll(&p, 1, timeout_ms) > 0) {
    ssize_t n = read(fd, out + got, outlen - 1 - got);
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  out[got] = '\0';
  return got;
}

int h_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  socklen_t len = sizeof(sa);
  bind(fd, (struct sockaddr *)&sa, sizeof(sa));
  getsockname(fd, (struct sockaddr *)&sa, &len);
  close(fd);
  return ntohs(sa.sin_port);
}

/* The number after "key:" in /proc/PID/file (status, io, ...); -1 if the line is not there. */
static long long h_proc_number(pid_t pid, const char *file, const char *key) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
  FILE *f = fopen(path, "r");
  size_t klen = strlen(key);
  long long n = -1;
  while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
    if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
      n = strtoll(line + klen + 1, NULL, 10);
      break;
    }
  }
  if (f != NULL)
    fclose(f);
  return n;
}

long h_rss_kib(pid_t pid) {
  return (long)h_proc_number(pid, "status", "VmRSS");
}

long long h_write_calls(pid_t pid) {
  return h_proc_number(pid, "io", "syscw");
}

long long h_log_lines(const char *path) {
  FILE *f = fopen(path, "r");
  long long n = 0;
  int ch;
  while (f != NULL && (ch = fgetc(f)) != EOF)
    n += ch == '\n';
  if (f != NULL)
    fclose(f);
  return n;
}

long long h_exchange_writes(const struct h_proc *p, const char *req, char *out, size_t outlen) {
  int fd = h_connect(p->port);
  if (fd < 0)
    return -1;
  /* The accept and whatever it logs are done before the count starts. */
  struct timespec settle = {0, 200 * 1000000L};
  nanosleep(&settle, NULL);
  long long before = h_write_calls(p->pid);
  size_t len = strlen(req);
  if (write(fd, req, len) != (ssize_t)len) {
    close(fd);
    return -1;
  }
  h_read_to_close(fd, 5000, out, outlen);
  close(fd);
  nanosleep(&settle, NULL);
  return h_write_calls(p->pid) - before;
}
