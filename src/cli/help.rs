//! The "Exit status:" paragraphs of the commands' `--help`, kept next to each other so that
//! they agree with [`super::CliError::exit_code`].

/// Commands that run a cycle (`sync`, `resync`, `snapshot`).
pub const EXIT_CYCLE: &str = "\
Exit status:
  0    the run finished (writes the CRM refused are in the report and `plansync writes list`)
  1    a failure: the CRM or the store could not be reached or used
  2    a configuration or an input to fix (the message names the file, key or flag)
  3    stopped early on purpose: the API budget ([limits] max_api_usage_percent) was reached";

/// `plansync run`.
pub const EXIT_RUN: &str = "\
Exit status:
  0    stopped cleanly after SIGTERM or SIGINT (the run in progress committed)
  1    a failure: the store lock is held, the store cannot be opened, or the run in progress
       did not stop within --stop-timeout-seconds
  2    a configuration to fix (the message names the file and the key)
  130  a second SIGTERM or SIGINT: exited at once, the run in progress was cut short (it
       resumes from its cursors on the next start)";

/// Commands that read the store (`status`, `explain`, `plan`, `writes`).
pub const EXIT_ADMIN: &str = "\
Exit status:
  0    done
  1    a failure: the store could not be opened or read
  2    a configuration or an input to fix (a malformed Id, another object's Id, a bad date)";

/// `plansync doctor`.
pub const EXIT_DOCTOR: &str = "\
Exit status:
  0    every check passed
  1    at least one check found a problem (each says what to fix)
  2    an input to fix on the command line";

/// `plansync demo` and `plansync emulator`.
pub const EXIT_SERVER: &str = "\
Exit status:
  0    done (the emulator: stopped by SIGTERM or SIGINT)
  1    a failure: the address is taken, the seed or the package cannot be read
  2    an input to fix on the command line";

/// `plansync completions`.
pub const EXIT_COMPLETIONS: &str = "\
Exit status:
  0    the script was printed
  2    an unknown shell";
