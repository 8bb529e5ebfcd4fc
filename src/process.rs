//! Process-wide settings the binary makes once at start, before any tensor work: where rayon's
//! workers run and how glibc keeps freed memory. Both measured on our CPU kernels' workloads.

/// Makes the calling thread one of the workers of rayon's global pool (which then starts one
/// thread fewer), so that the parallel loops of these ops start where the training loop runs.
///
/// Called from outside the pool, each parallel loop queues a job, wakes the workers and puts the
/// caller to sleep until they are done; one DCGAN iteration makes hundreds of such round trips
/// (W2 of the benchmark: 270,000 context switches in 15 s on 2 cores, 17 % of the time in the
/// kernel). From inside, the caller runs part of the loop itself and the others steal the rest.
/// Call it first thing, once, from the thread that will drive the work, as the binary's `main`
/// does; it returns false (and changes nothing) once the global pool exists.
pub fn join_thread_pool() -> bool {
    rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global()
        .is_ok()
}

/// Asks glibc's allocator to keep freed memory for the next allocation instead of handing it back
/// to the kernel. Returns whether the allocator took the settings (false off glibc).
///
/// Every operation allocates its output afresh, megabytes at a time. By default glibc serves such
/// blocks with fresh `mmap`s (or trims the heap they came from) and every page of the next one is
/// a page fault the kernel must zero: 10,000 faults per W2 iteration (a DCGAN step) on our 2-core
/// VM. With blocks up to 32 MiB served from a heap that is not trimmed, W2's faults fall from
/// 367,000 to 26,500 per benchmark run and W2 runs 4-10 % faster, W3 about 8 % (alternating
/// rounds, README). Peak memory barely moves (113 against 110 MiB): the same sizes recur every
/// step. Call it once at start, as the binary's `main` does.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // Blocks up to 32 MiB (the ceiling of glibc's own sliding threshold) from the heap, whose
        // top is kept up to 1 GiB.
        const MMAP_THRESHOLD: libc::c_int = 32 << 20;
        const TRIM_THRESHOLD: libc::c_int = 1 << 30;
        // SAFETY: mallopt only changes allocator parameters; valid at any time.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// The process's peak resident memory so far, in MiB (`getrusage`; `None` off Unix).
pub fn peak_rss_mib() -> Option<f64> {
    #[cfg(unix)]
    {
        // SAFETY: getrusage fills the struct it is given; a zeroed rusage is a valid one.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
            return None;
        }
        // Linux reports kibibytes, macOS bytes.
        let unit = if cfg!(target_os = "macos") {
            1.0
        } else {
            1024.0
        };
        Some(usage.ru_maxrss as f64 * unit / (1024.0 * 1024.0))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    /// The settings are accepted where they exist (a rejected value would leave glibc's defaults
    /// silently in place).
    #[test]
    fn allocator_takes_the_settings_on_glibc() {
        assert_eq!(
            super::keep_freed_memory(),
            cfg!(all(target_os = "linux", target_env = "gnu"))
        );
    }
}
