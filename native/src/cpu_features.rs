//! Runtime CPU feature detection for choosing a kernel path.
//!
//! Detection runs on every call (it is a cached CPUID read inside std), so
//! the answer always describes the CPU the process is running on, never the
//! one the crate was compiled on.

/// Every feature name this module can report, in reporting order.
pub const KNOWN_FEATURES: [&str; 7] = [
    "avx512f",
    "avx512bw",
    "avx512vnni",
    "avx512bf16",
    "avx2",
    "fma",
    "f16c",
];

/// The features the kernels care about. All false on non-x86 targets.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuFeatures {
    pub avx512f: bool,
    pub avx512bw: bool,
    pub avx512vnni: bool,
    pub avx512bf16: bool,
    pub avx2: bool,
    pub fma: bool,
    pub f16c: bool,
}

impl CpuFeatures {
    /// Detects the features of the running CPU.
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    pub fn detect() -> Self {
        CpuFeatures {
            avx512f: std::arch::is_x86_feature_detected!("avx512f"),
            avx512bw: std::arch::is_x86_feature_detected!("avx512bw"),
            avx512vnni: std::arch::is_x86_feature_detected!("avx512vnni"),
            avx512bf16: std::arch::is_x86_feature_detected!("avx512bf16"),
            avx2: std::arch::is_x86_feature_detected!("avx2"),
            fma: std::arch::is_x86_feature_detected!("fma"),
            f16c: std::arch::is_x86_feature_detected!("f16c"),
        }
    }

    /// Detects nothing: no x86 features exist on this target.
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
    pub fn detect() -> Self {
        CpuFeatures::default()
    }

    /// The names of the detected features, a subset of [`KNOWN_FEATURES`].
    pub fn names(&self) -> Vec<&'static str> {
        let flags = [
            self.avx512f,
            self.avx512bw,
            self.avx512vnni,
            self.avx512bf16,
            self.avx2,
            self.fma,
            self.f16c,
        ];
        KNOWN_FEATURES
            .iter()
            .zip(flags)
            .filter(|(_, present)| *present)
            .map(|(name, _)| *name)
            .collect()
    }
}
