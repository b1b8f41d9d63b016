/*
 * Runs a command that boots the test guest (tests/guest) and collects the
 * guest's report: the lines of its stdout that start with "GUEST ".
 * Reading stops at "GUEST done", at end of output, or at the deadline; a
 * child still running then is killed.  Used with QEMU and with godwit.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

typedef struct {
    GPtrArray *lines;  /* char *: every "GUEST ..." line, in order */
    GString *output;   /* all of stdout, for failure messages */
    bool done;         /* "GUEST done" was seen */
    bool timed_out;    /* the deadline passed first */
    bool killed;       /* we killed the child (after done or timeout) */
    bool exited;       /* the child ended by itself ... */
    int exit_status;   /* ... with this exit status (-1 if by a signal) */
    gint64 elapsed_us; /* spawn to end of collection */
} GuestReport;

/*
 * Called for every report line; return false to stop collecting (the
 * child is then killed).  Lets a test act while the guest runs.
 */
typedef bool (*GuestReportLineFunc)(const char *line, gpointer data);

/*
 * Runs argv (argv[0] looked up in PATH) with stdin from /dev/null and
 * stderr inherited.  Returns NULL and sets error if it cannot be spawned.
 * When the report is complete ("GUEST done" or end of output) and
 * wait_exit is true, waits (within the same deadline) for the child to
 * exit by itself instead of killing it.
 */
GuestReport *guest_report_run_full(const char *const *argv, guint timeout_ms,
                                   bool wait_exit, GuestReportLineFunc func,
                                   gpointer data, GError **error);

/* guest_report_run_full(argv, timeout_ms, false, NULL, NULL, error). */
GuestReport *guest_report_run(const char *const *argv, guint timeout_ms,
                              GError **error);

void guest_report_free(GuestReport *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GuestReport, guest_report_free)

/* True if a report line equals `line`. */
bool guest_report_has(const GuestReport *r, const char *line);

/* The first report line starting with `prefix`, or NULL. */
const char *guest_report_find(const GuestReport *r, const char *prefix);

/* The number of report lines starting with `prefix`. */
guint guest_report_count(const GuestReport *r, const char *prefix);

/* Logs all output with g_test_message (call before failing asserts). */
void guest_report_dump(const GuestReport *r);

/* Whether 512-byte sector `s` of the disk image `path` holds a non-zero
 * byte (the blk workload's patterns are never all zero). */
bool guest_sector_written(const char *path, guint64 s);
