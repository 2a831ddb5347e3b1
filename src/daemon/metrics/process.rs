//! The standard `process_*` metrics of the daemon itself, read from `/proc` on Linux (the
//! names and meanings client libraries share, so dashboards for other exporters work).

/// `/proc` reports CPU times in clock ticks of USER_HZ, which Linux fixes at 100 for user
/// space on every architecture it exposes it to (`sysconf(_SC_CLK_TCK)`).
const TICKS_PER_SECOND: f64 = 100.0;

/// The process's resource use at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessStats {
    /// User and system CPU time, seconds.
    pub cpu_seconds: f64,
    pub resident_memory_bytes: u64,
    pub virtual_memory_bytes: u64,
    pub open_fds: u64,
    /// The soft limit on open files; `None` when unlimited.
    pub max_fds: Option<u64>,
    /// When the process started, unix seconds.
    pub start_time_seconds: f64,
}

impl ProcessStats {
    /// This process's figures, or `None` where `/proc` is missing or unreadable.
    pub fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let system = std::fs::read_to_string("/proc/stat").ok()?;
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        ProcessStats::parse(&stat, &status, &system, &limits, open_fds)
    }

    /// The figures from the text of `/proc/self/stat`, `/proc/self/status`, `/proc/stat` and
    /// `/proc/self/limits`.
    pub fn parse(
        stat: &str,
        status: &str,
        system: &str,
        limits: &str,
        open_fds: u64,
    ) -> Option<ProcessStats> {
        // The command name (field 2) is in parentheses and may hold spaces and parentheses:
        // the fields after it start after the last ')'. Field 3 (state) is then index 0.
        let after_name = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
        let utime = field(14)?;
        let stime = field(15)?;
        let start_ticks = field(22)?;
        let virtual_memory_bytes = field(23)?;
        let boot_time: u64 = system
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        let resident_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        let max_fds = limits
            .lines()
            .find_map(|l| l.strip_prefix("Max open files"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|soft| soft.parse().ok());
        Some(ProcessStats {
            cpu_seconds: (utime + stime) as f64 / TICKS_PER_SECOND,
            resident_memory_bytes: resident_kib * 1024,
            virtual_memory_bytes,
            open_fds,
            max_fds,
            start_time_seconds: boot_time as f64 + start_ticks as f64 / TICKS_PER_SECOND,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (plan sync (x)) S 1 4242 4242 0 -1 4194560 1735 0 0 0 250 130 0 0 \
                        20 0 5 0 123456 104857600 2150 18446744073709551615 1 1 0 0 0 0 0 4096 \
                        17926 0 0 0 17 1 0 0 0 0 0\n";
    const STATUS: &str = "Name:\tplansync\nVmPeak:\t  110000 kB\nVmSize:\t  102400 kB\n\
                          VmRSS:\t    8600 kB\nThreads:\t5\n";
    const SYSTEM: &str = "cpu  1 2 3 4\nbtime 1773100000\nprocesses 900\n";
    const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units\n\
                          Max cpu time              unlimited            unlimited            seconds\n\
                          Max open files            1024                 524288               files\n";

    #[test]
    fn parses_the_proc_files() {
        let stats = ProcessStats::parse(STAT, STATUS, SYSTEM, LIMITS, 12).unwrap();
        // (250 + 130) ticks; btime + 123456 ticks.
        assert!((stats.cpu_seconds - 3.8).abs() < 1e-9, "{stats:?}");
        assert!(
            (stats.start_time_seconds - 1_773_101_234.56).abs() < 1e-3,
            "{stats:?}"
        );
        assert_eq!(stats.resident_memory_bytes, 8600 * 1024);
        assert_eq!(stats.virtual_memory_bytes, 104_857_600);
        assert_eq!(stats.open_fds, 12);
        assert_eq!(stats.max_fds, Some(1024));
    }

    #[test]
    fn unlimited_open_files_and_malformed_text() {
        let limits = "Max open files            unlimited            unlimited            files\n";
        let stats = ProcessStats::parse(STAT, STATUS, SYSTEM, limits, 3).unwrap();
        assert_eq!(stats.max_fds, None);
        assert_eq!(
            ProcessStats::parse("4242 (x) S 1 2", STATUS, SYSTEM, LIMITS, 3),
            None
        );
        assert_eq!(
            ProcessStats::parse(STAT, STATUS, "cpu 1 2\n", LIMITS, 3),
            None
        );
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_process() {
        let stats = ProcessStats::read().unwrap();
        assert!(stats.resident_memory_bytes > 0, "{stats:?}");
        assert!(
            stats.virtual_memory_bytes >= stats.resident_memory_bytes,
            "{stats:?}"
        );
        assert!(stats.open_fds >= 3, "{stats:?}");
        let now = chrono::Utc::now().timestamp() as f64;
        assert!(
            stats.start_time_seconds <= now + 1.0 && stats.start_time_seconds > now - 86400.0,
            "{stats:?}"
        );
    }
}
