//! Which kernel path the kernels run: the best the CPU supports, or a
//! downgrade requested through `KVPLUG_NATIVE_PATH` so every path can be
//! tested on one machine. An upgrade or an unknown name falls back to the
//! best path and says why.

use crate::cpu_features::CpuFeatures;

/// The environment variable that requests a kernel path.
pub const ENV_VAR: &str = "KVPLUG_NATIVE_PATH";

/// Kernel paths, ordered from slowest to fastest. Each path's requirements
/// include those of the paths below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KernelPath {
    Scalar,
    Avx2,
    Avx512,
    Avx512Vnni,
}

impl KernelPath {
    /// Every path, slowest first.
    pub const ALL: [KernelPath; 4] = [
        KernelPath::Scalar,
        KernelPath::Avx2,
        KernelPath::Avx512,
        KernelPath::Avx512Vnni,
    ];

    /// The name used in JavaScript and in `KVPLUG_NATIVE_PATH`.
    pub fn name(self) -> &'static str {
        match self {
            KernelPath::Scalar => "scalar",
            KernelPath::Avx2 => "avx2",
            KernelPath::Avx512 => "avx512",
            KernelPath::Avx512Vnni => "avx512_vnni",
        }
    }

    /// Parses a path name, ignoring case and surrounding blanks.
    pub fn parse(text: &str) -> Option<KernelPath> {
        let wanted = text.trim().to_ascii_lowercase();
        KernelPath::ALL
            .into_iter()
            .find(|path| path.name() == wanted)
    }

    /// The features this path needs that `features` lacks.
    pub fn missing(self, features: &CpuFeatures) -> Vec<&'static str> {
        let needs: &[(&'static str, bool)] = match self {
            KernelPath::Scalar => &[],
            KernelPath::Avx2 => &[
                ("avx2", features.avx2),
                ("fma", features.fma),
                ("f16c", features.f16c),
            ],
            KernelPath::Avx512 => &[
                ("avx512f", features.avx512f),
                ("avx512bw", features.avx512bw),
            ],
            KernelPath::Avx512Vnni => &[("avx512vnni", features.avx512vnni)],
        };
        let below = KernelPath::ALL
            .into_iter()
            .take_while(|path| *path < self)
            .last();
        let mut missing = below.map(|path| path.missing(features)).unwrap_or_default();
        missing.extend(
            needs
                .iter()
                .filter(|(_, present)| !present)
                .map(|(name, _)| *name),
        );
        missing
    }

    /// The fastest path `features` supports.
    pub fn best(features: &CpuFeatures) -> KernelPath {
        KernelPath::ALL
            .into_iter()
            .rev()
            .find(|path| path.missing(features).is_empty())
            .unwrap_or(KernelPath::Scalar)
    }
}

/// How a path was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectionStatus {
    /// No request: the best path.
    Auto,
    /// The requested downgrade was honoured.
    Override,
    /// The request was unknown or unavailable: the best path instead.
    Fallback,
}

/// A chosen path and the reason for it.
#[derive(Clone, Debug)]
pub struct Selection {
    pub path: KernelPath,
    pub best: KernelPath,
    pub requested: Option<String>,
    pub status: SelectionStatus,
    pub reason: String,
}

/// Chooses a path for `features` given an optional request.
pub fn select(features: &CpuFeatures, request: Option<&str>) -> Selection {
    let best = KernelPath::best(features);
    let requested = request.map(str::trim).filter(|text| !text.is_empty());
    let (path, status, reason) = match requested {
        None => (
            best,
            SelectionStatus::Auto,
            format!("{} is the best path this CPU supports", best.name()),
        ),
        Some(text) => match KernelPath::parse(text) {
            None => {
                let names: Vec<&str> = KernelPath::ALL.iter().map(|path| path.name()).collect();
                let reason = format!(
                    "{ENV_VAR}=\"{text}\" is not a kernel path (expected one of {}): using {}",
                    names.join(", "),
                    best.name()
                );
                (best, SelectionStatus::Fallback, reason)
            }
            Some(path) if path <= best => {
                let reason = format!(
                    "{ENV_VAR}={} selects {} (best available: {})",
                    path.name(),
                    path.name(),
                    best.name()
                );
                (path, SelectionStatus::Override, reason)
            }
            Some(path) => {
                let reason = format!(
                    "{ENV_VAR}={} is not available on this CPU (missing {}): using {}",
                    path.name(),
                    path.missing(features).join(", "),
                    best.name()
                );
                (best, SelectionStatus::Fallback, reason)
            }
        },
    };
    Selection {
        path,
        best,
        requested: requested.map(str::to_string),
        status,
        reason,
    }
}

/// Chooses a path for the running CPU, reading `KVPLUG_NATIVE_PATH` now
/// (not at load time), so a change to the variable applies to the next call.
pub fn select_from_env() -> Selection {
    let request = std::env::var_os(ENV_VAR).map(|value| value.to_string_lossy().into_owned());
    select(&CpuFeatures::detect(), request.as_deref())
}
