// The few kernel calls Node does not offer (issue #16): an AF_UNIX datagram sent from this very
// process (sd_notify with NotifyAccess=main), PR_SET_CHILD_SUBREAPER, waitpid() of an adopted
// orphan, pidfds, and a control client's credentials (SO_PEERCRED). Node-API only, so one build loads on every Node from 20 on. Each failure is
// thrown as Node throws its own: an Error with `code` (ENOENT), `errno` (negative), `syscall` and,
// where one was given, `path`. The JS side is src/os/native.ts.

#define _GNU_SOURCE
#include <node_api.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

// Kernel 5.3 and 5.1; glibc before 2.36 has no wrappers and older headers not even the numbers
// (the same on every architecture since 5.1's unified syscall table).
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

static const char *errno_name(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *name = strerrorname_np(err);
  if (name != NULL) return name;
#endif
  switch (err) {
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ECHILD: return "ECHILD";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case ENOSYS: return "ENOSYS";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EAGAIN: return "EAGAIN";
    default: return "UNKNOWN";
  }
}

/** Throws `<syscall> <CODE> (<strerror>)[ <path>]` with Node's fields; returns NULL for the caller to return. */
static napi_value throw_errno(napi_env env, int err, const char *syscall_name, const char *path) {
  const char *code = errno_name(err);
  char text[512];
  snprintf(text, sizeof text, "%s %s (%s)%s%s", syscall_name, code, strerror(err), path ? " " : "", path ? path : "");
  napi_value message, code_value, error, value;
  if (napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value) != napi_ok) return NULL;
  if (napi_create_error(env, code_value, message, &error) != napi_ok) return NULL;
  if (napi_create_int32(env, -err, &value) == napi_ok) napi_set_named_property(env, error, "errno", value);
  if (napi_create_string_utf8(env, syscall_name, NAPI_AUTO_LENGTH, &value) == napi_ok) napi_set_named_property(env, error, "syscall", value);
  if (path != NULL && napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &value) == napi_ok) napi_set_named_property(env, error, "path", value);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return NULL;
}

static napi_value undefined_value(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

/** args[i] as an int32, or a TypeError thrown (returns 0 then). */
static int int_arg(napi_env env, napi_value *args, size_t argc, size_t i, const char *what, int32_t *out) {
  napi_valuetype type = napi_undefined;
  if (i < argc) napi_typeof(env, args[i], &type);
  if (type != napi_number || napi_get_value_int32(env, args[i], out) != napi_ok) {
    throw_type(env, what);
    return 0;
  }
  return 1;
}

/** A string argument copied out (caller frees), or NULL with a TypeError thrown. */
static char *string_arg(napi_env env, napi_value *args, size_t argc, size_t i, const char *what, size_t *length) {
  napi_valuetype type = napi_undefined;
  if (i < argc) napi_typeof(env, args[i], &type);
  if (type != napi_string || napi_get_value_string_utf8(env, args[i], NULL, 0, length) != napi_ok) {
    throw_type(env, what);
    return NULL;
  }
  char *text = malloc(*length + 1);
  if (text == NULL) {
    throw_errno(env, ENOMEM, "malloc", NULL);
    return NULL;
  }
  napi_get_value_string_utf8(env, args[i], text, *length + 1, length);
  return text;
}

// notify(socketPath, message): one datagram to a filesystem path or, with a leading '@', to an
// abstract address (a leading NUL, not counted to any terminator), as sd_notify(3) reads
// NOTIFY_SOCKET. Sent from this process, so the kernel stamps this pid on it.
static napi_value Notify(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  size_t path_length = 0, message_length = 0;
  char *path = string_arg(env, args, argc, 0, "notify: socketPath must be a string", &path_length);
  if (path == NULL) return NULL;
  char *message = string_arg(env, args, argc, 1, "notify: message must be a string", &message_length);
  if (message == NULL) {
    free(path);
    return NULL;
  }
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  socklen_t addr_length;
  napi_value result = NULL;
  int is_abstract = path[0] == '@';
  // A path needs room for its NUL; an abstract name has none and may fill sun_path.
  if (path_length < 2 && is_abstract) {
    throw_errno(env, EINVAL, "sendto", path);
    goto done;
  }
  if (path_length == 0 || path_length > sizeof addr.sun_path - (is_abstract ? 0 : 1)) {
    throw_errno(env, path_length == 0 ? EINVAL : ENAMETOOLONG, "sendto", path);
    goto done;
  }
  memcpy(addr.sun_path, path, path_length);
  if (is_abstract) addr.sun_path[0] = '\0';
  addr_length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_length + (is_abstract ? 0 : 1));
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, errno, "socket", NULL);
    goto done;
  }
  ssize_t sent;
  do {
    sent = sendto(fd, message, message_length, MSG_NOSIGNAL, (struct sockaddr *)&addr, addr_length);
  } while (sent < 0 && errno == EINTR);
  int send_errno = errno;
  close(fd);
  if (sent < 0) {
    throw_errno(env, send_errno, "sendto", path);
    goto done;
  }
  result = undefined_value(env);
done:
  free(path);
  free(message);
  return result;
}

// setChildSubreaper(): orphans among this process's descendants are re-parented to it rather than
// to init, so the daemon keeps seeing (and can reap) its worker's escapees.
static napi_value SetChildSubreaper(napi_env env, napi_callback_info info) {
  (void)info;
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) return throw_errno(env, errno, "prctl", NULL);
  return undefined_value(env);
}

// reap(pid): waitpid(pid, WNOHANG). null while it runs, else {pid, code, signal} (signal a number;
// the JS side names it). For adopted orphans only: Node's own children are libuv's to reap.
static napi_value Reap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  int32_t pid;
  if (!int_arg(env, args, argc, 0, "reap: pid must be an integer", &pid)) return NULL;
  int status = 0;
  pid_t got;
  do {
    got = waitpid(pid, &status, WNOHANG);
  } while (got < 0 && errno == EINTR);
  if (got < 0) return throw_errno(env, errno, "waitpid", NULL);
  napi_value result;
  if (got == 0) {
    napi_get_null(env, &result);
    return result;
  }
  napi_value pid_value, code, signal;
  napi_create_object(env, &result);
  napi_create_int32(env, got, &pid_value);
  if (WIFEXITED(status)) napi_create_int32(env, WEXITSTATUS(status), &code);
  else napi_get_null(env, &code);
  if (WIFSIGNALED(status)) napi_create_int32(env, WTERMSIG(status), &signal);
  else napi_get_null(env, &signal);
  napi_set_named_property(env, result, "pid", pid_value);
  napi_set_named_property(env, result, "code", code);
  napi_set_named_property(env, result, "signal", signal);
  return result;
}

// pidfdOpen(pid): an fd that names this process and no later holder of its pid (close-on-exec,
// as pidfd_open always sets it). The caller closes it.
static napi_value PidfdOpen(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  int32_t pid;
  if (!int_arg(env, args, argc, 0, "pidfdOpen: pid must be an integer", &pid)) return NULL;
  long fd = syscall(SYS_pidfd_open, (pid_t)pid, 0);
  if (fd < 0) return throw_errno(env, errno, "pidfd_open", NULL);
  napi_value result;
  napi_create_int32(env, (int32_t)fd, &result);
  return result;
}

// pidfdSendSignal(fd, sig): kill() through a pidfd; ESRCH once that process has exited.
static napi_value PidfdSendSignal(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  int32_t fd, sig;
  if (!int_arg(env, args, argc, 0, "pidfdSendSignal: fd must be an integer", &fd)) return NULL;
  if (!int_arg(env, args, argc, 1, "pidfdSendSignal: sig must be a signal number", &sig)) return NULL;
  if (syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) != 0) return throw_errno(env, errno, "pidfd_send_signal", NULL);
  return undefined_value(env);
}

// peerCred(fd): the pid, uid and gid of the process at the other end of a connected AF_UNIX
// socket, as the kernel recorded them at connect(): who sent a control command, which no
// request field can fake.
static napi_value PeerCred(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  int32_t fd;
  if (!int_arg(env, args, argc, 0, "peerCred: fd must be an integer", &fd)) return NULL;
  struct ucred cred;
  socklen_t length = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) return throw_errno(env, errno, "getsockopt", NULL);
  napi_value result, pid, uid, gid;
  napi_create_object(env, &result);
  napi_create_int32(env, cred.pid, &pid);
  napi_create_uint32(env, cred.uid, &uid);
  napi_create_uint32(env, cred.gid, &gid);
  napi_set_named_property(env, result, "pid", pid);
  napi_set_named_property(env, result, "uid", uid);
  napi_set_named_property(env, result, "gid", gid);
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"notify", NULL, Notify, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setChildSubreaper", NULL, SetChildSubreaper, NULL, NULL, NULL, napi_enumerable, NULL},
    {"reap", NULL, Reap, NULL, NULL, NULL, napi_enumerable, NULL},
    {"pidfdOpen", NULL, PidfdOpen, NULL, NULL, NULL, napi_enumerable, NULL},
    {"pidfdSendSignal", NULL, PidfdSendSignal, NULL, NULL, NULL, napi_enumerable, NULL},
    {"peerCred", NULL, PeerCred, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
