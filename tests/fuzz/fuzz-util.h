/*
 * Shared by the fuzz targets that talk to a server over a socket: a
 * private runtime directory, quiet logs, and a pump that writes a
 * client's bytes while the server runs on the default main context.
 *
 * Threads: the fuzzer's thread is the main thread; it iterates the
 * default GMainContext itself.
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <signal.h>
#include <glib-unix.h>
#include <glib.h>

#define FUZZ_WAIT_US (5 * G_USEC_PER_SEC) /* a stuck server is a bug */

static GLogWriterOutput
fuzz_log_drop(GLogLevelFlags level, const GLogField *fields, gsize n,
              gpointer data)
{
    return G_LOG_WRITER_HANDLED;
}

static char *fuzz_dir;

static void
fuzz_rmtree(const char *path)
{
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);

    for (const char *e; d && (e = g_dir_read_name(d));) {
        g_autofree char *p = g_build_filename(path, e, NULL);
        if (g_file_test(p, G_FILE_TEST_IS_DIR) &&
            !g_file_test(p, G_FILE_TEST_IS_SYMLINK)) {
            fuzz_rmtree(p);
        } else {
            unlink(p);
        }
    }
    rmdir(path);
}

static void
fuzz_remove_dir(void)
{
    fuzz_rmtree(fuzz_dir);
}

/*
 * Once per process: GODWIT_RUNTIME_DIR in a fresh temporary directory,
 * SIGPIPE ignored, log messages dropped unless GW_FUZZ_LOG is set.
 * Returns the directory (removed, with what is in it, at exit).  Fuzzed
 * relative paths land in the working directory: scripts/fuzz.sh runs
 * the targets in a scratch one.
 */
static inline const char *
fuzz_runtime_dir(void)
{
    char *dir = fuzz_dir;

    if (!dir) {
        dir = fuzz_dir = g_dir_make_tmp("gw-fuzz-XXXXXX", NULL);
        g_assert(dir);
        atexit(fuzz_remove_dir);
        g_setenv("GODWIT_RUNTIME_DIR", dir, true);
        signal(SIGPIPE, SIG_IGN);
        if (!getenv("GW_FUZZ_LOG")) {
            g_log_set_writer_func(fuzz_log_drop, NULL, NULL);
        }
    }
    return dir;
}

static inline void
fuzz_iterate(void)
{
    while (g_main_context_iteration(NULL, FALSE)) {
    }
}

/* Reads what the server sent (non-blocking); false at EOF or error. */
static inline bool
fuzz_drain(int fd, GString *in)
{
    char buf[65536];

    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n > 0) {
            if (in) {
                g_string_append_len(in, buf, n);
            }
            continue;
        }
        return n < 0 && (errno == EAGAIN || errno == EINTR);
    }
}

/*
 * Writes data to `fd` (made non-blocking) while the server runs and
 * its replies are read into `in` (may be NULL).  With `until`, then
 * waits until until(in, opaque) holds; false if the server closed the
 * connection first or FUZZ_WAIT_US passed.
 */
static inline bool
fuzz_send(int fd, const void *data, size_t len, GString *in,
          bool (*until)(GString *in, void *opaque), void *opaque)
{
    gint64 deadline = g_get_monotonic_time() + FUZZ_WAIT_US;
    size_t off = 0;

    g_unix_set_fd_nonblocking(fd, TRUE, NULL);
    while (g_get_monotonic_time() < deadline) {
        if (off < len) {
            ssize_t n = send(fd, (const char *)data + off, len - off,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                off += n;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                return false;
            }
        }
        fuzz_iterate();
        bool open = fuzz_drain(fd, in);
        if (off == len && (!until || until(in, opaque))) {
            return true;
        }
        if (!open) {
            return false;
        }
        struct pollfd p = {fd, POLLIN | (off < len ? POLLOUT : 0), 0};
        poll(&p, 1, 1);
    }
    return false;
}

/* Closes our writing side and waits for the server to close its end. */
static inline void
fuzz_finish(int fd)
{
    gint64 deadline = g_get_monotonic_time() + FUZZ_WAIT_US;

    shutdown(fd, SHUT_WR);
    while (g_get_monotonic_time() < deadline) {
        fuzz_iterate();
        if (!fuzz_drain(fd, NULL)) {
            break;
        }
        struct pollfd p = {fd, POLLIN, 0};
        poll(&p, 1, 1);
    }
    close(fd);
    fuzz_iterate();
}
